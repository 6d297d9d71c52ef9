"""``fanout.py --workers K``: one publisher cascaded over K media worker processes on Redis.

This process plays the hub (it places viewers with ``signaling.placement`` exactly as the hub
does, spreading the room over every worker: ``spread_cpu_pct`` 0, and routes their messages,
``relay.pull`` included) and all the clients (the publisher, replaying pre-encoded VP8
640x480@30 ~1 Mb/s + Opus, and N counting viewers, as fanout.py's light viewers). K worker
processes (``--role worker``) run a MediaWorker each on the Redis bus. CPU of each worker
process is read with psutil over each phase:

1. ``origin``: the publisher alone on the origin (its receive cost);
2. ``links``: plus one relay link to each other worker, no viewer yet: the origin's cost per
   link and each relay's cost of receiving the link;
3. ``fanout``: plus N viewers spread over the K workers (round robin by room peers): CPU per
   viewer (the increase over phase 2, summed over workers, per viewer), the fps of every
   viewer, how long each viewer took from its offer to its first complete video frame, and
   the added latency of a hop (the same frame's arrival at a viewer of a relay minus at a
   viewer of the origin; frames matched by their last payload bytes, which no hop changes).

    python bench/fanout.py --workers 3 --viewers 60 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import statistics
import sys
import time
from typing import Any

import fanout
import fanout_clients
import psutil
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from gateway.media import hooks
from gateway.media.worker import MediaWorker, worker_channel
from signaling import bus_messages as B
from signaling.bus import Bus, RedisBus
from signaling.placement import Placement

ROOM = "fan"
CONFIG = fanout_clients.CONFIG


# ----------------------------------------------------------------------------- worker process


async def worker_process(worker_id: str, redis_url: str, prefix: str) -> None:
    """A media worker on the Redis bus until SIGTERM."""
    fanout_clients.loopback()
    bus = RedisBus(redis_url, prefix)
    worker = MediaWorker(bus, worker_id, ice_loopback_only=True)
    await worker.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await worker.close()
    await bus.close()


async def publisher_process(worker_id: str, redis_url: str, prefix: str) -> None:
    """The publisher in a process of its own (the viewers' process must not slow its pace)."""
    fanout_clients.loopback()
    bus = RedisBus(redis_url, prefix)
    publisher = Client(bus, "pub", worker_id)
    await publisher.join(fanout_clients.replay_tracks(fanout_clients.encode_media(4.0)))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await publisher.close()
    await bus.close()


# ----------------------------------------------------------------------------- clients


class TimedCounter(fanout_clients.FrameCounter):
    """Counts complete frames; remembers when the first one came and, if asked, when each
    frame (keyed by its last 16 payload bytes; the replayed media repeats every 4 s, so a key
    recurs and its arrivals are kept as a list) arrived."""

    def __init__(self, pc: RTCPeerConnection, keep_arrivals: bool) -> None:
        super().__init__(pc)
        self.first_at: float | None = None
        self.arrivals: dict[bytes, list[float]] | None = {} if keep_arrivals else None
        self._kept = 0

    def count(self, data: bytes, now: float) -> None:
        before = self.frames
        super().count(data, now)
        if self.frames != before:
            at = time.monotonic()
            if self.first_at is None:
                self.first_at = at
            if self.arrivals is not None and self._kept < 100_000:
                self.arrivals.setdefault(data[-16:], []).append(at)
                self._kept += 1


class Client:
    """A light peer (fanout.py's viewer) talking to its worker over the Redis bus."""

    def __init__(self, bus: Bus, peer: str, worker: str, keep_arrivals: bool = False) -> None:
        self.bus, self.peer, self.worker = bus, peer, worker
        self.pc = RTCPeerConnection(CONFIG)
        self.channel = f"bench.{peer}"
        self.counter = TimedCounter(self.pc, keep_arrivals)
        self.offered_at = 0.0
        #: the fps its worker sent it, from the worker's ``peer.stats`` (every 2 s)
        self.sent_fps: list[float] = []
        self.task: asyncio.Task[None] | None = None

    async def to_worker(self, type_: str, **fields: Any) -> None:
        await self.bus.publish(
            worker_channel(self.worker),
            B.WORKER_COMMANDS.validate_python(
                {"type": type_, "session_id": ROOM, "peer": self.peer, **fields}
            ),
        )

    async def join(self, tracks: list[MediaStreamTrack]) -> None:
        sub = await self.bus.subscribe(self.channel)
        self.task = asyncio.create_task(self._read(sub))
        for track in tracks:
            hooks.install_packetizer(
                self.pc.addTrack(track), "vp8" if track.kind == "video" else "opus"
            )
        if not tracks:
            self.pc.createDataChannel("c")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        hooks.install_fast_receive(self.pc, on_rtp=self.counter.count)
        self.offered_at = time.monotonic()
        await self.to_worker("peer.offer", sdp=self.pc.localDescription.sdp, reply_to=self.channel)

    async def _read(self, sub: Any) -> None:
        async for message in sub:
            with contextlib.suppress(Exception):  # a late re-offer for a closing viewer
                if message["type"] == "peer.stats":
                    self.sent_fps.append(float(message["stats"].get("fps") or 0.0))
                elif message["type"] == "peer.answer":
                    await self.pc.setRemoteDescription(
                        RTCSessionDescription(sdp=message["sdp"], type="answer")
                    )
                elif message["type"] == "peer.offer":
                    await self.pc.setRemoteDescription(
                        RTCSessionDescription(sdp=message["sdp"], type="offer")
                    )
                    await self.pc.setLocalDescription(await self.pc.createAnswer())
                    await self.to_worker("peer.answer", sdp=self.pc.localDescription.sdp)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.pc.close()


class Hub:
    """What the hub does for a viewer: place it, open a relay, pull, subscribe."""

    def __init__(self, bus: Bus, placement: Placement, home: str) -> None:
        self.bus, self.placement, self.home = bus, placement, home

    async def open(self, worker: str, relay: bool) -> None:
        await self.bus.publish(
            worker_channel(worker),
            B.RoomOpen(
                session_id=ROOM,
                codec="vp8",
                record=False,
                meta=B.RoomMeta(kind="training", unit_id=None, reply_to="bench.hub", relay=relay),
            ),
        )

    async def place(self, peer: str, publishing: bool) -> str:
        spot = await self.placement.place_peer(
            ROOM, peer, self.home, publishing=publishing, restart=False
        )
        if spot.new_relay:
            await self.open(spot.worker, relay=True)
        return spot.worker

    async def subscribe(self, client: Client, publisher: str, origin: str) -> None:
        if client.worker != origin:
            await self.bus.publish(
                worker_channel(client.worker),
                B.RelayPull(session_id=ROOM, publisher=publisher, origin=origin),
            )
        await client.to_worker("peer.subscribe", publisher=publisher)


async def _publishing(bus: Bus, origin: str) -> bool:
    """Whether the origin reports a published track (its heartbeat's ``tracks``)."""
    info = (await bus.live_workers()).get(origin, {})
    return bool(info.get("tracks"))


def cpu_seconds(procs: dict[str, psutil.Process]) -> dict[str, float]:
    out = {}
    for wid, proc in procs.items():
        times = proc.cpu_times()
        out[wid] = times.user + times.system
    return out


async def window(procs: dict[str, psutil.Process], seconds: float) -> dict[str, float]:
    """Each worker's CPU over ``seconds``, % of one core."""
    c0, t0 = cpu_seconds(procs), time.monotonic()
    await asyncio.sleep(seconds)
    c1, elapsed = cpu_seconds(procs), time.monotonic() - t0
    return {w: (c1[w] - c0[w]) / elapsed * 100 for w in procs}


async def run(args: argparse.Namespace) -> None:
    """The orchestrating (hub + clients) process."""
    fanout_clients.loopback()
    redis_url = args.redis or os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    prefix = "bench" + secrets.token_hex(4)
    bus = RedisBus(redis_url, prefix)
    await bus.ping()
    ids = [f"w{i + 1}" for i in range(args.workers)]
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            fanout.SCRIPT,
            "--role",
            "cluster-worker",
            "--id",
            wid,
            "--redis",
            redis_url,
            "--prefix",
            prefix,
        )  # fmt: skip
        for wid in ids
    ]
    procs = {wid: psutil.Process(c.pid) for wid, c in zip(ids, children, strict=True)}
    clients: list[Client] = []
    try:
        deadline = time.monotonic() + 30
        while set(ids) - set(await bus.live_workers()):
            assert time.monotonic() < deadline, "workers did not register"
            await asyncio.sleep(0.2)
        placement = Placement(bus, spread_cpu_pct=0.0)
        origin, _ = await placement.place(ROOM)
        assert origin is not None
        hub = Hub(bus, placement, origin)
        await hub.open(origin, relay=False)
        children.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                fanout.SCRIPT,
                "--role",
                "cluster-publisher",
                "--id",
                await hub.place("pub", True),
                "--redis",
                redis_url,
                "--prefix",
                prefix,
            )  # fmt: skip
        )
        deadline = time.monotonic() + 60
        while not await _publishing(bus, origin):
            assert time.monotonic() < deadline, "the publisher did not start"
            await asyncio.sleep(0.5)
        await asyncio.sleep(3.0)  # connected, publishing
        phase_s = max(4.0, args.seconds / 3)
        cpu_origin = await window(procs, phase_s)

        # one probe viewer per worker: the relays' links come up (and the hop is measured)
        probes: dict[str, Client] = {}  # the first viewer of each worker
        viewers: list[Client] = []

        async def add_viewer() -> None:
            peer = f"v{len(viewers)}"
            worker = await hub.place(peer, False)
            viewer = Client(bus, peer, worker, keep_arrivals=worker not in probes)
            probes.setdefault(worker, viewer)
            clients.append(viewer)
            viewers.append(viewer)
            await viewer.join([])
            await hub.subscribe(viewer, "pub", origin)

        while len(probes) < args.workers:
            await add_viewer()  # every relay's link comes up
        early = {w: sum(1 for v in viewers if v.worker == w) for w in ids}
        await asyncio.sleep(3.0)
        cpu_links = await window(procs, phase_s)
        while len(viewers) < args.viewers:
            await add_viewer()
        deadline = time.monotonic() + 30
        while any(v.counter.first_at is None for v in viewers) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        start = [v.counter.frames for v in viewers]
        stats_from = [len(v.sent_fps) for v in viewers]
        t0 = time.monotonic()
        cpu_fanout = await window(procs, args.seconds)
        elapsed = time.monotonic() - t0
        fps = [(v.counter.frames - s) / elapsed for v, s in zip(viewers, start, strict=True)]
        sent = [
            statistics.median(v.sent_fps[n:]) if v.sent_fps[n:] else 0.0
            for v, n in zip(viewers, stats_from, strict=True)
        ]
    finally:
        for client in clients:
            await client.close()
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        for child in children:
            await child.wait()
        await bus.close()
    report(args, origin, probes, viewers, (fps, sent), early, (cpu_origin, cpu_links, cpu_fanout))


def report(
    args: argparse.Namespace,
    origin: str,
    probes: dict[str, Client],
    viewers: list[Client],
    rates: tuple[list[float], list[float]],
    early: dict[str, int],
    cpu: tuple[dict[str, float], dict[str, float], dict[str, float]],
) -> None:
    cpu_origin, cpu_links, cpu_fanout = cpu
    fps, sent = rates
    relays = [w for w in cpu_fanout if w != origin]
    per_worker = {w: sum(1 for v in viewers if v.worker == w) for w in cpu_fanout}
    added = sum(cpu_fanout[w] - cpu_links[w] for w in cpu_fanout)
    # phase 2 had the first viewers of each worker already: phase 3 added the others
    per_viewer = added / max(len(viewers) - sum(early.values()), 1)
    # a link's cost is phase 2's increase less the viewers phase 2 had on that worker
    origin_rise = cpu_links[origin] - cpu_origin[origin] - early[origin] * per_viewer
    origin_per_link = origin_rise / max(len(relays), 1)
    relay_receive = (
        statistics.mean(cpu_links[w] - cpu_origin[w] - early[w] * per_viewer for w in relays)
        if relays
        else 0.0
    )
    relay_cost = origin_per_link + relay_receive
    hops: list[float] = []
    base = probes[origin].counter.arrivals or {}
    for w in relays:
        for key, times in (probes[w].counter.arrivals or {}).items():
            for at in times:
                # the same frame of the same 4 s loop: the nearest arrival at the origin's probe
                nearest = min(base.get(key, []), key=lambda t, at=at: abs(at - t), default=None)
                if nearest is not None and abs(at - nearest) < 1.0:
                    hops.append((at - nearest) * 1000)
    hop_ms = statistics.median(hops) if hops else float("nan")
    joins = sorted(
        v.counter.first_at - v.offered_at for v in viewers if v.counter.first_at is not None
    )
    spread = ", ".join(f"{w}={per_worker[w]} viewers" for w in cpu_fanout)
    print(f"workers: {spread} (origin {origin})")
    for w in cpu_fanout:
        print(
            f"  {w}: CPU publisher only {cpu_origin[w]:.1f}%, with links {cpu_links[w]:.1f}%,"
            f" with viewers {cpu_fanout[w]:.1f}% of a core"
        )
    print(
        f"  per viewer {per_viewer:.2f}% of a core; per relay {relay_cost:.2f}% (origin's send"
        f" {origin_per_link:.2f}% + relay's receive {relay_receive:.2f}%); hop {hop_ms:.1f} ms"
        f" over {len(hops)} frames"
    )
    got, mean_fps = f"{len(joins)}/{len(viewers)}", statistics.mean(fps)
    print(f"  {got} viewers got video; fps min {min(fps):.1f} mean {mean_fps:.1f}")
    for w in cpu_fanout:
        mine = [f for v, f in zip(viewers, fps, strict=True) if v.worker == w]
        by_worker = [f for v, f in zip(viewers, sent, strict=True) if v.worker == w]
        if mine:
            print(
                f"  {w}'s viewers: fps min {min(mine):.1f} mean {statistics.mean(mine):.1f};"
                f" {w} sent them min {min(by_worker):.1f} mean {statistics.mean(by_worker):.1f}"
            )
    p50 = joins[len(joins) // 2] if joins else float("nan")
    worst = joins[-1] if joins else float("nan")
    print(
        f"BENCH fanout workers={args.workers} viewers={args.viewers}"
        f" cpu_per_viewer_pct={per_viewer:.2f} relay_cost_pct={relay_cost:.2f}"
        f" relay_origin_pct={origin_per_link:.2f} relay_receive_pct={relay_receive:.2f}"
        f" fps_min={min(fps):.1f} fps_mean={mean_fps:.1f} hop_latency_ms={hop_ms:.1f}"
        f" join_to_video_p50_s={p50:.2f} join_to_video_max_s={worst:.2f}"
        f" worker_sent_fps_min={min(sent):.1f}"
        f" worker_cpu_pct={','.join(f'{cpu_fanout[w]:.0f}' for w in cpu_fanout)}"
    )
