"""What forwarded RTP looks like on the wire to a viewer (the worker's lean send loop)."""

from __future__ import annotations

import asyncio
import fractions
import os
import struct
import time
from typing import Any

import av
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import RtpPacket

from gateway.media import hooks
from gateway.media import peer as peer_module
from gateway.media.packetize import Packetizer


def tap(viewer: Any, drop: Any = None) -> list[bytes]:
    """Record every RTP packet a viewer's transport delivers (after SRTP), optionally dropping.

    ``drop(data)`` returning True loses that packet before aiortc's receiver sees it, as the
    network would.
    """
    transport = viewer.pc.sctp.transport  # BUNDLE: the one DTLS transport of the viewer
    seen: list[bytes] = []

    def wrap(original: hooks.RtpIn) -> hooks.RtpIn:
        async def handle(data: bytes, arrival_time_ms: int) -> None:
            if drop is not None and drop(data):
                return
            seen.append(data)
            await original(data, arrival_time_ms)

        return handle

    hooks.wrap_rtp_in(transport, wrap)
    return seen


def payload_types(viewer: Any, mime: str) -> set[int]:
    return {
        c.payloadType
        for t in viewer.pc.getTransceivers()
        for c in hooks.negotiated_codecs(t)
        if c.mimeType.lower() == mime
    }


async def two_viewers(client, room_opener, media_sources):
    await alice_publishes(client, room_opener, media_sources)
    viewers = []
    for name in ("bob", "carol"):
        viewer = await client("r1", name)
        await viewer.offer()
        await viewer.wait_for(lambda v=viewer: v.of_type("peer.state"), within=10)
        viewers.append(viewer)
    return viewers


async def test_viewers_get_well_formed_rtp_with_the_same_payloads(
    client, room_opener, media_sources, worker, decode_errors
):
    bob, carol = await two_viewers(client, room_opener, media_sources)
    seen = {v.id: tap(v) for v in (bob, carol)}
    for viewer in (bob, carol):
        await viewer.send("peer.subscribe", publisher="alice")
    for viewer in (bob, carol):
        await viewer.wait_for(lambda v=viewer: v.frames_from("alice", "video") >= 30, within=20)
    assert decode_errors.messages == []

    payloads = {}
    for viewer in (bob, carol):
        transport = viewer.pc.sctp.transport
        vp8 = payload_types(viewer, "video/vp8")
        video_mids = {t.mid for t in viewer.pc.getTransceivers() if t.kind == "video"}
        packets = [
            RtpPacket.parse(data, hooks.rtp_header_extensions(transport))
            for data in seen[viewer.id]
        ]
        video = [p for p in packets if p.payload_type in vp8]
        assert len(video) > 30
        now_abs = (int((time.time() + 2_208_988_800) * (1 << 18))) & 0xFFFFFF
        for p in video:
            assert p.version == 2
            assert p.extensions.mid in video_mids  # BUNDLE routing by mid, as aiortc sends it
            # abs-send-time: 6.18 fixed-point seconds, within 2 s of now (modulo 64 s)
            assert p.extensions.abs_send_time is not None
            assert min((now_abs - p.extensions.abs_send_time) % (1 << 24), 1 << 24) < 2 << 18
        # one SSRC, consecutive sequence numbers, a marker on each frame's last packet
        assert len({p.ssrc for p in video}) == 1
        for a, b in zip(video, video[1:], strict=False):
            assert b.sequence_number == (a.sequence_number + 1) & 0xFFFF
            if b.timestamp != a.timestamp:
                assert a.marker == 1
        payloads[viewer.id] = [p.payload for p in video]

    # each frame is packetized once for both viewers: the same VP8 payloads (picture ids too)
    first = payloads["carol"][0]
    assert first in payloads["bob"]
    at = payloads["bob"].index(first)
    common = min(len(payloads["bob"]) - at, len(payloads["carol"]))
    assert common > 20
    assert payloads["bob"][at : at + common] == payloads["carol"][:common]


async def test_a_lost_packet_is_sent_again_after_the_viewers_nack(
    client, room_opener, media_sources, worker, decode_errors
):
    bob, _carol = await two_viewers(client, room_opener, media_sources)
    state: dict[str, Any] = {"video": 0, "lost": None}

    def drop(data: bytes) -> bool:
        if (data[1] & 0x7F) in payload_types(bob, "video/vp8"):
            state["video"] += 1
            if state["video"] == 200:  # well into the stream: one packet is lost once
                state["lost"] = struct.unpack("!H", data[2:4])[0]
                return True
        return False

    seen = tap(bob, drop)
    await bob.send("peer.subscribe", publisher="alice")
    await bob.wait_for(lambda: state["lost"] is not None, within=20)
    rtx = payload_types(bob, "video/rtx")
    assert rtx, "the viewer negotiated retransmissions"

    def resent() -> bool:
        return any(
            (d[1] & 0x7F) in rtx
            and struct.unpack("!H", d[12 + 4 + 4 * struct.unpack("!H", d[14:16])[0] :][:2])[0]
            == state["lost"]
            for d in seen
            if d[0] & 0x10 and len(d) > 20
        )

    await bob.wait_for(resent, within=5)
    frames = bob.frames_from("alice", "video")
    await bob.wait_for(lambda: bob.frames_from("alice", "video") >= frames + 30, within=10)
    assert decode_errors.messages == []


async def test_an_unanswered_offer_is_sent_again_then_the_peer_is_closed(
    client, room_opener, media_sources, worker, monkeypatch
):
    monkeypatch.setattr(peer_module, "ANSWER_TIMEOUT_S", 0.5)
    bob, carol = await two_viewers(client, room_opener, media_sources)
    # bob's client misses the worker's first offer: it comes again and the video follows
    bob.ignore_offers = 1
    await bob.send("peer.subscribe", publisher="alice")
    await bob.wait_for(lambda: bob.frames_from("alice", "video") >= 5, within=15)
    assert bob.offers_from_worker >= 2
    assert not bob.of_type("peer.error")

    # carol's client never answers: after three offers its peer is closed, and she is told why
    carol.ignore_offers = 100
    await carol.send("peer.subscribe", publisher="alice")
    await carol.wait_for(
        lambda: any(m["code"] == "answer_timeout" for m in carol.of_type("peer.error")),
        within=10,
    )
    await carol.wait_for(
        lambda: any(m["state"] == "closed" for m in carol.of_type("peer.state")), within=10
    )
    assert carol.offers_from_worker == peer_module.OFFER_ATTEMPTS
    # bob is unaffected
    frames = bob.frames_from("alice", "video")
    await bob.wait_for(lambda: bob.frames_from("alice", "video") >= frames + 10, within=10)


# --------------------------------------------------------------------------- upstream loss


def drop_sent(publisher: Any, drop: Any) -> None:
    """Lose packets the publisher sends (after its sender built them), as the network would."""
    transport = next(
        t.sender.transport for t in publisher.pc.getTransceivers() if t.kind == "video"
    )

    def wrap(original: hooks.RtpOut) -> hooks.RtpOut:
        async def send(data: bytes) -> None:
            if not drop(data):
                await original(data)

        return send

    hooks.wrap_rtp_out(transport, wrap)


def worker_video_receiver(worker: Any, room: str, peer: str) -> Any:
    pc = worker.rooms[room].peers[peer].pc
    return next(t.receiver for t in pc.getTransceivers() if t.kind == "video")


def lose_one_video_packet(alice_pts: Any, state: dict[str, Any], also_rtx: bool) -> Any:
    """A drop function losing the 150th VP8 packet (and, if asked, every retransmission)."""

    def drop(data: bytes) -> bool:
        pt = data[1] & 0x7F
        vp8, rtx = alice_pts()
        if pt in vp8:
            state["video"] += 1
            if state["video"] == 150:
                state["lost_at"] = time.monotonic()
                return True
        if pt in rtx and state["lost_at"] is not None:
            state["rtx"] += 1
            return also_rtx
        return False

    return drop


async def alice_publishes(
    client: Any, room_opener: Any, media_sources: Any, record: bool = False
) -> Any:
    """Room r1 (VP8) with alice publishing the test video and tone."""
    video_cls, audio_cls = media_sources
    await room_opener("r1", "vp8", record=record)
    alice = await client("r1", "alice")
    await alice.offer(video_cls(), audio_cls())
    return alice


async def a_lossy_call(
    client: Any, room_opener: Any, media_sources: Any, also_rtx: bool
) -> tuple[Any, dict[str, Any]]:
    """A recorded room: alice publishes losing one video packet (and maybe its resends), bob
    watches. Returns bob and the loss's state (``lost_at``, ``rtx`` resends seen)."""
    state: dict[str, Any] = {"video": 0, "lost_at": None, "rtx": 0}
    alice = await alice_publishes(client, room_opener, media_sources, record=True)

    def alice_pts() -> tuple[set[int], set[int]]:
        return payload_types(alice, "video/vp8"), payload_types(alice, "video/rtx")

    drop_sent(alice, lose_one_video_packet(alice_pts, state, also_rtx=also_rtx))
    bob = await client("r1", "bob")
    await bob.offer()
    await bob.wait_for(lambda: bob.of_type("peer.state"), within=10)
    await bob.send("peer.subscribe", publisher="alice")
    return bob, state


async def test_a_publishers_lost_packet_is_repaired_by_the_workers_nack(
    client, room_opener, media_sources, worker, sinks, decode_errors
):
    bob, state = await a_lossy_call(client, room_opener, media_sources, also_rtx=False)

    await bob.wait_for(lambda: state["rtx"] > 0, within=20)  # the worker asked, alice resent
    frames = bob.frames_from("alice", "video")
    await bob.wait_for(lambda: bob.frames_from("alice", "video") >= frames + 30, within=10)
    counters = hooks.receive_counters(worker_video_receiver(worker, "r1", "alice"))
    assert counters["nacks_sent"] >= 1
    assert counters["skipped_gaps"] == 0  # repaired in time: no frame was given up
    # the recording has every frame: consecutive timestamps, no keyframe forced by the loss
    video = [p for peer, kind, p, _t in sinks[0].packets if kind == "video"]
    steps = {b.pts - a.pts for a, b in zip(video, video[1:], strict=False)}
    assert max(steps) <= 2 * 3000, steps
    assert decode_errors.messages == []


async def test_a_packet_lost_for_good_costs_a_keyframe_not_a_broken_picture(
    client, room_opener, media_sources, worker, sinks, decode_errors
):
    bob, state = await a_lossy_call(client, room_opener, media_sources, also_rtx=True)

    await bob.wait_for(lambda: state["lost_at"] is not None, within=20)
    receiver = worker_video_receiver(worker, "r1", "alice")
    await bob.wait_for(lambda: hooks.receive_counters(receiver)["skipped_gaps"] == 1, within=5)
    frames = bob.frames_from("alice", "video")
    await bob.wait_for(lambda: bob.frames_from("alice", "video") >= frames + 30, within=10)
    assert state["rtx"] >= 1  # the worker asked, but the retransmission was lost too

    # the recording (what every viewer got too) skips the broken frames and resumes on a
    # keyframe the worker asked for
    video = [p for peer, kind, p, _t in sinks[0].packets if kind == "video"]
    gaps = [i for i in range(1, len(video)) if video[i].pts - video[i - 1].pts > 2 * 3000]
    assert len(gaps) == 1, [p.pts for p in video]
    assert video[gaps[0]].is_keyframe
    assert decode_errors.messages == []


async def test_a_publisher_inventing_sources_cannot_grow_the_workers_tables(
    client, room_opener, media_sources, worker
):
    from aiortc.rtp import RtpPacket  # noqa: PLC0415

    alice = await alice_publishes(client, room_opener, media_sources)
    await alice.wait_for(lambda: alice.of_type("peer.tracks"), within=10)
    transport = next(t.sender.transport for t in alice.pc.getTransceivers())
    vp8 = next(iter(payload_types(alice, "video/vp8")))
    for ssrc in range(1000, 1300):  # 300 made-up sources with the video payload type
        packet = RtpPacket(payload_type=vp8, sequence_number=1, timestamp=1, ssrc=ssrc)
        packet.payload = b"\x90\x80\x01\x00"
        await hooks.send_raw_rtp(transport, packet.serialize())
    receiver = worker_video_receiver(worker, "r1", "alice")
    router = hooks.rtp_router(receiver.transport)
    await alice.wait_for(lambda: any(ssrc >= 1000 for ssrc in router.ssrc_table), within=5)
    await asyncio.sleep(0.3)
    assert len(router.ssrc_table) <= hooks.MAX_SOURCES * 2 + 4  # audio's and video's, bounded
    assert hooks.receive_counters(receiver)["sources"] <= hooks.MAX_SOURCES
    # and alice's real video still flows to a viewer
    bob = await client("r1", "bob")
    await bob.offer()
    await bob.wait_for(lambda: bob.of_type("peer.state"), within=10)
    await bob.send("peer.subscribe", publisher="alice")
    await bob.wait_for(lambda: bob.frames_from("alice", "video") >= 10, within=15)


async def test_a_publisher_sending_beyond_its_budget_is_cut_down(
    client, room_opener, media_sources, worker, monkeypatch
):
    from gateway.media import rtp_in  # noqa: PLC0415

    monkeypatch.setattr(rtp_in, "MAX_INBOUND_BITS_PER_S", 64_000)  # far below the test video
    alice = await alice_publishes(client, room_opener, media_sources)
    await alice.wait_for(lambda: alice.of_type("peer.tracks"), within=10)
    peer = worker.rooms["r1"].peers["alice"]
    await alice.wait_for(lambda: hooks.inbound_dropped(peer.pc) > 50, within=10)
    # what the worker takes in (and would forward and record) stays near the budget:
    # 8 kB a second here, where the test's video alone is several times that
    before = sum(f.bytes for f in peer.feeds.values())
    await asyncio.sleep(2.0)
    taken = sum(f.bytes for f in peer.feeds.values()) - before
    assert taken <= 2 * 8_000 * 1.25, taken


async def test_a_viewers_bandwidth_estimate_caps_what_the_publisher_is_asked_for(
    client, room_opener, media_sources, worker
):

    await alice_publishes(client, room_opener, media_sources)
    bob = await client("r1", "bob")
    await bob.offer()
    await bob.wait_for(lambda: bob.of_type("peer.state"), within=10)
    await bob.send("peer.subscribe", publisher="alice")
    await bob.wait_for(lambda: bob.frames_from("alice", "video") >= 10, within=20)
    feed = next(f for f in worker.rooms["r1"].peers["alice"].feeds.values() if f.kind == "video")
    # (with no estimate the feed is not capped: tests/media/test_media_units.py; here bob's own
    # aiortc estimator may already have reported one)

    # bob's link can take 300 kb/s: his browser says so in REMB, about once a second
    receiver = next(t.receiver for t in bob.pc.getTransceivers() if t.kind == "video")
    media_ssrc = receiver.getSynchronizationSources()[0].source
    await hooks.send_remb(receiver, 300_000, media_ssrc)  # only this one: aiortc's is switched off
    # the worker's REMB to alice is capped by it (tests/media/test_media_units.py: the pacer)
    await bob.wait_for(lambda: feed.downstream_cap() == 300_000, within=5)


class NoiseVideoTrack(MediaStreamTrack):
    """320x240 at 30 fps of random pixels: keyframes of many packets."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        self._count += 1
        await asyncio.sleep(max(0.0, self._start + self._count / 30 - loop.time()))
        frame = av.VideoFrame(320, 240, "yuv420p")
        for plane in frame.planes:
            plane.update(os.urandom(plane.buffer_size))
        frame.pts = self._count * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


async def test_a_paced_keyframe_is_recorded_at_its_first_packets_arrival(
    client, room_opener, worker, sinks
):
    # a browser paces a keyframe's packets out over 100 ms and more; here 10 ms apart
    await room_opener("r1", "vp8", record=True)
    alice = await client("r1", "alice")
    await alice.offer(NoiseVideoTrack())
    vp8 = payload_types(alice, "video/vp8")
    transport = next(t.sender.transport for t in alice.pc.getTransceivers() if t.kind == "video")

    def wrap(original: hooks.RtpOut) -> hooks.RtpOut:
        async def paced(data: bytes) -> None:
            if (data[1] & 0x7F) in vp8:
                await asyncio.sleep(0.01)
            await original(data)

        return paced

    hooks.wrap_rtp_out(transport, wrap)
    await alice.wait_for(
        lambda: any(k == "video" and p.is_keyframe for _, k, p, _a in sinks[0].packets),
        within=15,
    )
    at = next(
        i for i, (_, k, p, _a) in enumerate(sinks[0].packets) if k == "video" and p.is_keyframe
    )
    keyframe = sinks[0].packets[at][2]
    packets = len(Packetizer("vp8").pack(keyframe)[0])
    assert packets >= 4, packets
    # dated by its first packet, (packets - 1) × 10 ms before its last one completed it
    early = sinks[0].handed_at[at] - sinks[0].packets[at][3]
    assert early >= (packets - 1) * 0.01 * 0.8, (early, packets)
