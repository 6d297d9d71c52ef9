"""Fan-out cost of the forwarding worker versus a decode/re-encode relay, in the same run.

Two processes, so the client side's cost stays out of the figures:

* this process (the "worker side") runs a MediaWorker on a MemoryBus, a decode/re-encode relay
  (aiortc MediaRelay, the baseline) and a tiny line-JSON bridge that lets the other process
  publish to and subscribe on the bus;
* a child process (``--role clients``) runs the publisher (VP8 640x480@30 ~1 Mb/s and Opus,
  encoded ONCE into memory, then replayed with correct timing) and the viewers, which count
  encoded frames without decoding (the passthrough hook on the client side too).

CPU is this process's CPU time over the measuring window, in % of one core.

    python bench/fanout.py --viewers 20 --seconds 10
    python bench/fanout.py --rooms 10 --seconds 10      # K concurrent 1:1 rooms
    python bench/fanout.py --workers 3 --viewers 60     # cascaded over 3 worker processes
                                                        # on Redis (bench/fanout_cluster.py)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCRIPT = os.path.abspath(__file__)
sys.path.insert(0, os.path.dirname(os.path.dirname(SCRIPT)))

from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaRelay  # noqa: E402
from aiortc.mediastreams import MediaStreamTrack  # noqa: E402
from fanout_clients import (  # noqa: E402
    CLIENT_CPU,
    CONFIG,
    WORKER,
    Link,
    Viewer,
    encode_media,
    loopback,
    measure,
    replay_tracks,
)

from gateway.media import hooks  # noqa: E402
from gateway.media.worker import MediaWorker, worker_channel  # noqa: E402
from recorder.room import RoomRecorder  # noqa: E402
from signaling.bus import MemoryBus  # noqa: E402
from signaling.bus_messages import WORKER_COMMANDS  # noqa: E402

# ----------------------------------------------------------------------------- bridge


class Bridge:
    """Line-JSON link between the client process and this process's bus."""

    def video_sent(self) -> dict[int, int]:
        """Frames handed to each video subscriber's sender, by track identity."""
        if self.worker is None:
            return {}
        return {
            id(slot.track): slot.track.sent
            for room in self.worker.rooms.values()
            for peer in room.peers.values()
            for slot in peer.slots
            if slot.track.kind == "video" and slot.feed is not None
        }

    def keyframe_requests(self) -> int:
        """PLIs the worker has sent its publishers so far."""
        if self.worker is None:
            return 0
        return sum(
            feed.plis_sent
            for room in self.worker.rooms.values()
            for peer in room.peers.values()
            for feed in peer.feeds.values()
        )

    def upstream_losses(self) -> dict[str, int]:
        """What the worker's receivers repaired or gave up, over all published video tracks."""
        totals = {"nacks_sent": 0, "skipped_gaps": 0, "dropped_frames": 0}
        if self.worker is None:
            return totals
        for room in self.worker.rooms.values():
            for peer in room.peers.values():
                for transceiver in peer.pc.getTransceivers():
                    counters = hooks.receive_counters(transceiver.receiver)
                    if transceiver.kind == "video" and counters:
                        for key in totals:
                            totals[key] += counters[key]
        return totals

    def __init__(self, bus: MemoryBus, relay: RelayServer) -> None:
        self.bus, self.relay = bus, relay
        self.marks: dict[str, tuple[float, float]] = {}
        #: per mark: video frames the worker handed to each subscriber's sender so far
        self.sent: dict[str, dict[int, int]] = {}
        self.losses: dict[str, dict[str, int]] = {}
        self.plis: dict[str, int] = {}
        self.worker: MediaWorker | None = None
        self.reports: list[dict[str, Any]] = []
        self.done = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.lag = LagMonitor()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def forward(channel: str) -> None:
            sub = await self.bus.subscribe(channel)
            async for message in sub:
                if writer.is_closing():  # the client process is gone (the bench is ending)
                    break
                writer.write((json.dumps({"channel": channel, "message": message}) + "\n").encode())

        while line := await reader.readline():
            item = json.loads(line)
            op = item["op"]
            if op == "publish":
                # the client process speaks the worker's bus protocol (WorkerCommand)
                command = WORKER_COMMANDS.validate_python(item["message"])
                await self.bus.publish(item["channel"], command)
            elif op == "subscribe":
                self.tasks.append(asyncio.create_task(forward(item["channel"])))
            elif op == "relay.offer":
                answer = await self.relay.offer(
                    item["peer"], item["sdp"], item.get("publish", False)
                )
                writer.write(
                    (
                        json.dumps(
                            {"channel": "relay", "message": {"peer": item["peer"], "sdp": answer}}
                        )
                        + "\n"
                    ).encode()
                )
            elif op == "mark":
                self.marks[item["name"]] = (time.monotonic(), time.process_time())
                self.sent[item["name"]] = self.video_sent()
                self.losses[item["name"]] = self.upstream_losses()
                self.plis[item["name"]] = self.keyframe_requests()
                if item["name"].endswith("start"):
                    self.lag.reset()
                else:
                    self.marks[item["name"] + "_lag"] = self.lag.figures()
            elif op == "report":
                self.reports.append(item)
                self.done.set()
        self.done.set()


class LagMonitor:
    def __init__(self) -> None:
        self.samples: list[float] = []

    def reset(self) -> None:
        self.samples = []

    async def run(self) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(0.01)
            self.samples.append(max(0.0, time.monotonic() - start - 0.01) * 1000)

    def figures(self) -> tuple[float, float]:
        if not self.samples:
            return 0.0, 0.0
        ordered = sorted(self.samples)
        return ordered[int(len(ordered) * 0.99) - 1 if len(ordered) > 1 else 0], ordered[-1]


class RelayServer:
    """The baseline: aiortc's own way, decode once, MediaRelay, re-encode per viewer."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.tracks: dict[str, MediaStreamTrack] = {}
        self.pcs: list[RTCPeerConnection] = []
        self.sinks: list[asyncio.Task[None]] = []

    async def offer(self, peer: str, sdp: str, publish: bool) -> str:
        pc = RTCPeerConnection(CONFIG)
        self.pcs.append(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.tracks[track.kind] = track

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        if not publish:
            for kind in ("video", "audio"):
                pc.addTrack(self.relay.subscribe(self.tracks[kind], buffered=False))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        self.pcs.clear()


async def worker_side(args: argparse.Namespace) -> None:
    loopback()
    bus = MemoryBus()
    recordings = Path(tempfile.mkdtemp(prefix="fanout-rec-"))
    recorders: list[RoomRecorder] = []

    def sink_factory(room: str, codec: str, meta: dict[str, Any]) -> Any:
        recorder = RoomRecorder(recordings, room, codec, meta)
        recorder.start()
        recorders.append(recorder)
        return recorder

    worker = MediaWorker(
        bus, WORKER, ice_loopback_only=True, sink_factory=sink_factory if args.record else None
    )
    await worker.start()
    relay = RelayServer()
    bridge = Bridge(bus, relay)
    bridge.worker = worker
    lag_task = asyncio.create_task(bridge.lag.run())
    server = await asyncio.start_server(bridge.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    child = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            SCRIPT,
            "--role",
            "clients",
            "--port",
            str(port),
            "--viewers",
            str(args.viewers),
            "--rooms",
            str(args.rooms),
            "--seconds",
            str(args.seconds),
            "--relay-viewers",
            str(args.relay_viewers),
            *(["--record"] if args.record else []),
            *(["--full-viewers"] if args.full_viewers else []),
            *(["--burst"] if args.burst else []),
        ]
    )
    try:
        await asyncio.wait_for(bridge.done.wait(), args.seconds * 3 + 120)
    finally:
        await child.wait()
        lag_task.cancel()
        for task in bridge.tasks:
            task.cancel()
        server.close()
        await relay.close()
        await worker.close()
        await bus.close()
    if recorders:

        def summary() -> str:
            files = list(recordings.glob("*/*/*.webm"))  # <session>/<run>/<file>
            size = sum(f.stat().st_size for f in files)
            shutil.rmtree(recordings, ignore_errors=True)
            return f"recorded {len(files)} files, {size / 1e6:.1f} MB"

        print(await asyncio.to_thread(summary))
    report(args, bridge)


def worker_sent_fps(bridge: Bridge, phase: str) -> list[float]:
    """Frames per second the worker itself sent to each video subscriber (the clients' own
    receive rate is capped by the client process when it cannot keep up with N viewers)."""
    (t0, _), (t1, _) = bridge.marks[f"{phase}_start"], bridge.marks[f"{phase}_end"]
    before, after = bridge.sent[f"{phase}_start"], bridge.sent[f"{phase}_end"]
    return [(after[k] - before.get(k, 0)) / (t1 - t0) for k in after]


def cpu_pct(marks: dict[str, Any], phase: str) -> float:
    (t0, c0), (t1, c1) = marks[f"{phase}_start"], marks[f"{phase}_end"]
    return (c1 - c0) / (t1 - t0) * 100


def report(args: argparse.Namespace, bridge: Bridge) -> None:
    if not bridge.reports:
        print("clients failed; no report")
        sys.exit(1)
    result = bridge.reports[-1]
    marks = bridge.marks
    fps = result["sfu_fps"]
    sfu_cpu = cpu_pct(marks, "sfu")
    streams = len(fps)
    lag99, lagmax = marks["sfu_end_lag"]
    sent = worker_sent_fps(bridge, "sfu")
    print(
        f"forwarding worker: {streams} video streams delivered, worker CPU {sfu_cpu:.1f}% of a core"
    )
    if sent:
        print(
            f"  worker sent per viewer: fps min {min(sent):.1f} mean {statistics.mean(sent):.1f}"
            " (frames handed to each viewer's sender; below: complete frames each client got)"
        )
    print(
        f"  fps min {min(fps):.1f} mean {statistics.mean(fps):.1f}; "
        f"loop lag p99 {lag99:.1f} ms max {lagmax:.1f} ms"
    )
    before, after = bridge.losses.get("sfu_start", {}), bridge.losses.get("sfu_end", {})
    losses = {k: after[k] - before.get(k, 0) for k in after}
    if losses:
        print(
            f"  published video received: {losses['nacks_sent']} NACKs sent, "
            f"{losses['skipped_gaps']} gaps given up, {losses['dropped_frames']} frames dropped "
            "awaiting a keyframe"
        )
    if "client_cpu_pct" in result:
        client_cpu = result["client_cpu_pct"]
        print(f"  client process (publishers and counting viewers): {client_cpu:.1f}%")
    line = (
        f"BENCH fanout viewers={args.viewers if not args.rooms else 0} rooms={args.rooms} "
        f"streams={streams} cpu_per_viewer_pct={sfu_cpu / streams:.2f} "
        f"fps_min={min(fps):.1f} fps_mean={statistics.mean(fps):.1f} loop_lag_ms={lag99:.1f}"
        f" worker_sent_fps_min={min(sent) if sent else 0:.1f}"
    )
    joins = result.get("join_to_video_s") or []
    if joins:
        p50, worst = joins[len(joins) // 2], joins[-1]
        start = "burst start" if args.burst else "offer"
        print(f"  {start} to first complete video frame: p50 {p50:.2f} s, max {worst:.2f} s")
        line += f" join_to_video_p50_s={p50:.2f} join_to_video_max_s={worst:.2f}"
        if args.burst:
            plis = bridge.plis.get("sfu_start", 0)
            print(f"    keyframe requests (PLI) sent to the publisher until then: {plis}")
            line += f" join_plis={plis}"
        for stage, times in (result.get("join_stages_s") or {}).items():
            if times:
                print(
                    f"    {stage} p50 {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s"
                    f" ({len(times)} viewers)"
                )
    if not args.rooms:
        line += " workers=1" + (" burst=1" if args.burst else "")
    if "relay_fps" in result:
        relay_cpu = cpu_pct(marks, "relay")
        rfps = result["relay_fps"]
        per = relay_cpu / len(rfps)
        print(
            f"decode/re-encode relay: {len(rfps)} viewers, CPU {relay_cpu:.1f}% "
            f"({per:.1f}%/viewer), fps min {min(rfps):.1f} mean {statistics.mean(rfps):.1f}"
        )
        line += (
            f" relay_viewers={len(rfps)} relay_cpu_per_viewer_pct={per:.2f}"
            f" relay_fps_min={min(rfps):.1f} ratio={per / (sfu_cpu / streams):.1f}"
        )
    print(line)


async def client_side(args: argparse.Namespace) -> None:
    loopback()
    started = time.monotonic()
    media = encode_media(4.0)
    kbps = sum(p.size for p in media[0]) * 8 / 4.0 / 1000
    print(
        f"pre-encoded 4 s: {len(media[0])} VP8 frames ({kbps:.0f} kb/s), "
        f"{len(media[1])} Opus packets in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
    link = Link(reader, writer)
    result: dict[str, Any] = {"op": "report"}
    light = not args.full_viewers

    everyone: list[Viewer] = []
    if args.rooms:
        watchers: list[Viewer] = []
        for k in range(args.rooms):
            room = f"room{k}"
            link.send(
                op="publish",
                channel=worker_channel(WORKER),
                message={
                    "type": "room.open",
                    "session_id": room,
                    "codec": "vp8",
                    "record": args.record,
                    "meta": {"kind": "visit", "unit_id": None, "reply_to": "bench"},
                },
            )
            a, b = Viewer(link, room, "a", light), Viewer(link, room, "b", light)
            await a.join(replay_tracks(media), ["b"])
            await b.join(replay_tracks(media), ["a"])
            watchers += [a, b]
        everyone += watchers
        result["sfu_fps"] = await measure(link, "sfu", watchers, args.seconds)
        result["client_cpu_pct"] = CLIENT_CPU["sfu"]
    else:
        link.send(
            op="publish",
            channel=worker_channel(WORKER),
            message={"type": "room.open", "session_id": "fan", "codec": "vp8", "record": False},
        )
        publisher = Viewer(link, "fan", "pub", light)
        await publisher.join(replay_tracks(media), [])
        viewers = [Viewer(link, "fan", f"v{i}", light) for i in range(args.viewers)]
        if args.burst:
            # every viewer at once, from its first message (its subscribe) to video
            await asyncio.sleep(2.5)  # the publisher's media flows before the burst
            burst_at = time.monotonic()
            await asyncio.gather(*(viewer.join([], ["pub"]) for viewer in viewers))
            for viewer in viewers:
                viewer.offered_at = burst_at
        else:
            for viewer in viewers:
                await viewer.join([], ["pub"])
        everyone += [publisher, *viewers]
        result["sfu_fps"] = await measure(link, "sfu", viewers, args.seconds)
        result["join_stages_s"] = {
            stage: sorted(v.stages[stage] - v.offered_at for v in viewers if stage in v.stages)
            for stage in ("peer.answer", "connected", "peer.offer")
        }
        result["join_to_video_s"] = sorted(
            v.counter.first_at - v.offered_at
            for v in viewers
            if v.counter is not None and v.counter.first_at is not None
        )
    print("forwarding phase measured", flush=True)
    for viewer in everyone:
        await viewer.close()
    await asyncio.sleep(1.0)

    if args.relay_viewers and not args.rooms:
        publisher = Viewer(link, "relay", "pub", light)
        await publisher.join_relay(replay_tracks(media))
        await asyncio.sleep(0.5)
        viewers = [Viewer(link, "relay", f"v{i}", light) for i in range(args.relay_viewers)]
        for viewer in viewers:
            await viewer.join_relay([])
        print("relay phase joined", flush=True)
        result["relay_fps"] = await measure(link, "relay", viewers, args.seconds)
        for viewer in [publisher, *viewers]:
            await viewer.close()
    link.send(**result)
    await writer.drain()
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument(
        "--rooms", type=int, default=0, help="K concurrent 1:1 rooms instead of one publisher"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--relay-viewers", type=int, default=2, help="viewers of the relay baseline"
    )
    parser.add_argument(
        "--role",
        default="worker",
        choices=["worker", "clients", "cluster-worker", "cluster-publisher"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="record every room too (the real recorder, files in a temporary directory)",
    )
    parser.add_argument(
        "--full-viewers",
        action="store_true",
        help="client peers receive through aiortc's whole receive path (jitter buffer, REMB)",
    )
    parser.add_argument(
        "--burst",
        action="store_true",
        help="the viewers join all at once; join_to_video is from the burst's first message",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="K > 1: cascade one publisher over K worker processes on Redis"
        " (GATEWAY_TEST_REDIS_URL or --redis; bench/fanout_cluster.py)",
    )
    parser.add_argument("--redis", default="", help="Redis URL for --workers > 1")
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--id", default="", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(process)d %(name)s %(message)s")
    if args.role.startswith("cluster-") or args.workers > 1:
        import fanout_cluster  # noqa: PLC0415  (this directory is on sys.path)

        if args.role == "cluster-worker":
            asyncio.run(fanout_cluster.worker_process(args.id, args.redis, args.prefix))
        elif args.role == "cluster-publisher":
            asyncio.run(fanout_cluster.publisher_process(args.id, args.redis, args.prefix))
        else:
            asyncio.run(fanout_cluster.run(args))
    elif args.role == "clients":
        asyncio.run(client_side(args))
    else:
        asyncio.run(worker_side(args))


if __name__ == "__main__":
    main()
