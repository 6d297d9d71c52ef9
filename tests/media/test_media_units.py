from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import aiortc
import av
import pytest
from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from config.errors import MediaError
from gateway.media import forward, hooks, rtp_in
from gateway.media.forward import Feed, ForwardTrack
from signaling.turn import turn_credentials


def test_turn_credentials_match_coturn_rest_scheme():
    # expected value computed independently: printf %s "1700000000:alice" |
    #   openssl dgst -sha1 -hmac north-secret -binary | base64
    username, password = turn_credentials("north-secret", "alice", ttl_s=3600, now=1699996400.7)
    assert username == "1700000000:alice"
    assert password == "g+jb180fcj+xlpA/2mP60OdIgU0="


def test_hooks_fit_the_installed_aiortc():
    hooks.check_hooks()


def test_hooks_check_names_versions_when_a_private_name_is_gone(monkeypatch):
    monkeypatch.delattr(RTCRtpReceiver, "_send_rtcp_pli")
    with pytest.raises(MediaError) as caught:
        hooks.check_hooks()
    message = str(caught.value)
    assert f"aiortc {aiortc.__version__}" in message
    assert f"av {av.__version__}" in message
    assert "_send_rtcp_pli" in message


@pytest.mark.parametrize(
    ("codec", "data", "expected"),
    [
        ("VP8", b"\x10\x02\x00", True),
        ("VP8", b"\x11\x02\x00", False),
        ("H264", b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68\xce\x00\x00\x01\x65\x88", True),
        ("H264", b"\x00\x00\x00\x01\x41\x9a", False),
        ("opus", b"\xfc", True),
    ],
)
def test_keyframe_detection(codec, data, expected):
    assert rtp_in.is_keyframe(codec, data) is expected


class PacketSource(MediaStreamTrack):
    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[av.Packet | None] = asyncio.Queue()

    async def recv(self):
        packet = await self.queue.get()
        if packet is None:
            raise MediaStreamError
        return packet


def make_packet(index: int, keyframe: bool) -> av.Packet:
    packet = av.Packet(b"\x00" * 100)
    packet.pts = index * 3000
    packet.time_base = Fraction(1, 90000)
    packet.is_keyframe = keyframe
    return packet


async def test_full_queue_drops_to_next_keyframe_and_rate_limits_pli():
    source = PacketSource()
    plis: list[float] = []

    async def send_pli() -> bool:
        plis.append(time.monotonic())
        return True

    ended = []
    feed = Feed("alice", "video", "0", source, send_pli, on_end=ended.append)
    stalled, reader = ForwardTrack("video"), ForwardTrack("video")
    stalled.attach(feed)
    reader.attach(feed)
    got: list[int] = []

    async def read() -> None:
        while True:
            got.append((await reader.recv()).pts // 3000)

    reading = asyncio.create_task(read())
    started = time.monotonic()
    for i in range(330):
        source.queue.put_nowait(make_packet(i, keyframe=i % 50 == 0))
        await asyncio.sleep(0.002)
        assert stalled.queued <= stalled.maxsize == forward.VIDEO_QUEUE
    elapsed = time.monotonic() - started

    assert stalled.overflows >= 2
    assert stalled.dropped > 0
    assert stalled._queue.get_nowait().is_keyframe  # resumed on a keyframe
    # the reading subscriber got every frame from its first keyframe on, in order
    assert got == list(range(got[0], 330))
    assert got[0] % 50 == 0
    # overflows asked for keyframes, but never more than one PLI per interval
    assert len(plis) >= 2
    gaps = [b - a for a, b in zip(plis, plis[1:], strict=False)]
    assert min(gaps) >= forward.PLI_INTERVAL_S * 0.9
    assert len(plis) <= elapsed / forward.PLI_INTERVAL_S + 2

    source.queue.put_nowait(None)  # publisher's track ends
    await asyncio.wait_for(feed.ended.wait(), 1)
    assert ended == [feed]
    assert stalled.feed is None
    assert reader.feed is None
    reading.cancel()
    await asyncio.gather(reading, return_exceptions=True)
    await feed.close()


async def test_audio_queue_overflow_keeps_newest():
    track = ForwardTrack("audio")
    for i in range(forward.AUDIO_QUEUE + 10):
        track.offer(make_packet(i, keyframe=True))
    assert track.queued == 10
    assert track.overflows == 1


async def test_a_dropped_keyframe_request_is_repeated_while_a_subscriber_waits():
    # Chrome acts on at most one keyframe request per 300 ms and drops the rest; a subscriber
    # that waits for a keyframe forwards nothing, so its viewer never asks by itself. Before
    # the retry, such a viewer stayed without video for good (the flaky browser suite).
    source = PacketSource()
    plis: list[float] = []
    honoured: list[float] = []
    index = 0

    async def send_pli() -> bool:
        now = time.monotonic()
        plis.append(now)
        if len(plis) >= 3:  # the publisher ignores the first two requests
            honoured.append(now)
        return True

    async def publish() -> None:
        nonlocal index
        while True:
            keyframe = index == 0 or (bool(honoured) and honoured[-1] > time.monotonic() - 0.05)
            source.queue.put_nowait(make_packet(index, keyframe=keyframe))
            if keyframe and index:
                honoured.clear()
            index += 1
            await asyncio.sleep(1 / 30)

    feed = Feed("alice", "video", "0", source, send_pli)
    publishing = asyncio.create_task(publish())
    await asyncio.sleep(0.2)  # the feed started on its first keyframe; the viewer comes later
    viewer = ForwardTrack("video")
    viewer.attach(feed)
    packet = await asyncio.wait_for(viewer.recv(), 2 * forward.KEYFRAME_RETRY_S + 1)
    assert packet.is_keyframe
    assert feed.pli_retries >= 1
    assert len(plis) >= 3
    gaps = [b - a for a, b in zip(plis, plis[1:], strict=False)]
    assert min(gaps) >= forward.PLI_INTERVAL_S * 0.9
    # once the viewer has its keyframe, no more requests
    count = len(plis)
    await asyncio.sleep(forward.KEYFRAME_RETRY_S + 0.3)
    assert len(plis) == count
    publishing.cancel()
    await asyncio.gather(publishing, return_exceptions=True)
    await feed.close()


def test_the_remb_sent_upstream_is_capped_by_the_viewers_and_paced(monkeypatch):
    clock = {"now": 100.0}
    monkeypatch.setattr(rtp_in.time, "monotonic", lambda: clock["now"])

    class Estimator:
        def add(self, **kwargs: object) -> tuple[int, list[int]]:
            return 2_000_000, [5]

    pacer = rtp_in.RembPacer(Estimator())
    assert pacer.add() == (2_000_000, [5])
    clock["now"] += 0.1
    assert pacer.add() is None  # paced: once a second
    cap = {"value": None}
    pacer.cap = lambda: cap["value"]
    cap["value"] = 300_000  # a viewer can take only this
    clock["now"] += 0.15
    assert pacer.add() == (300_000, [5])  # a drop goes out at once (after 200 ms)
    assert pacer.sent_bitrate == 300_000
    cap["value"] = None
    clock["now"] += 1.0
    assert pacer.add() == (2_000_000, [5])


async def test_a_feed_is_capped_by_its_viewers_lowest_recent_estimate():
    async def send_pli() -> bool:
        return True

    feed = Feed("alice", "video", "0", PacketSource(), send_pli)
    quiet, weak, strong = ForwardTrack("video"), ForwardTrack("video"), ForwardTrack("video")
    for track in (quiet, weak, strong):
        track.attach(feed)
    assert feed.downstream_cap() is None  # nobody said what they can take
    estimates = {id(quiet): None, id(weak): 300_000, id(strong): 2_000_000}
    for track in (quiet, weak, strong):
        track.estimate = lambda t=track: estimates[id(t)]
    assert feed.downstream_cap() == 300_000
    estimates[id(weak)] = 20_000  # a viewer's broken estimate does not starve the call
    assert feed.downstream_cap() == forward.MIN_FOLLOWED_BITRATE
    feed.follow_viewers = False  # a training
    assert feed.downstream_cap() is None
    await feed.close()


async def test_a_burst_of_viewers_starts_on_shared_keyframes_without_a_pli_each():
    # 100 viewers joining at once must not wait for the publisher's next scheduled keyframe
    # (a whole GOP), nor ask it for a keyframe each: the requests of a burst are coalesced.
    source = PacketSource()
    plis: list[float] = []
    index = 0

    async def send_pli() -> bool:
        plis.append(time.monotonic())
        return True

    async def publish() -> None:
        # a browser: a keyframe every 10 s (300 frames), or the frame after a request
        nonlocal index
        answered = 0
        while True:
            keyframe = index % 300 == 0 or len(plis) > answered
            answered = len(plis)
            source.queue.put_nowait(make_packet(index, keyframe=keyframe))
            index += 1
            await asyncio.sleep(1 / 30)

    feed = Feed("alice", "video", "0", source, send_pli)
    publishing = asyncio.create_task(publish())
    await asyncio.sleep(0.6)  # the feed started (its own first request is answered)
    before = len(plis)

    async def join(viewer: ForwardTrack) -> float:
        started = time.monotonic()
        packet = await asyncio.wait_for(viewer.recv(), 2.0)
        assert packet.is_keyframe
        return time.monotonic() - started

    # wave 1: 20 viewers subscribed (no sender yet: no request), then their senders start
    # within a frame: one request, one keyframe for all
    wave1 = [ForwardTrack("video") for _ in range(20)]
    for viewer in wave1:
        viewer.attach(feed)
    await asyncio.sleep(0.5)
    assert len(plis) == before  # subscribing alone asks nothing (its keyframe would be stale)
    waits = await asyncio.gather(*(join(v) for v in wave1))
    await asyncio.sleep(forward.PLI_INTERVAL_S + 0.2)
    assert len(plis) == before + 1
    assert max(waits) < 0.3

    # wave 2: 20 viewers whose senders start over 300 ms: at most one more request per
    # PLI interval, and none waits longer than an interval and a frame or two
    before = len(plis)
    wave2 = [ForwardTrack("video") for _ in range(20)]
    joins = []
    for viewer in wave2:
        viewer.attach(feed)
        joins.append(asyncio.create_task(join(viewer)))
        await asyncio.sleep(0.015)
    waits = await asyncio.gather(*joins)
    assert len(plis) - before <= 2
    assert max(waits) < forward.PLI_INTERVAL_S + 0.25
    publishing.cancel()
    await asyncio.gather(publishing, return_exceptions=True)
    await feed.close()
