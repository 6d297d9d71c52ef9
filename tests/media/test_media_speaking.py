"""Who is speaking, told by the worker from the audio levels a publisher's packets carry.

aiortc's sender puts the RFC 6464 audio level on each Opus packet, as browsers do; the worker
reads it on receipt and decodes nothing.
"""

from __future__ import annotations

import asyncio
import fractions
from typing import Any

import av
from aiortc.mediastreams import MediaStreamTrack

from tests.media.conftest import _TONE


class TalkingTrack(MediaStreamTrack):
    """20 ms frames of a 440 Hz tone while ``loud``, of silence otherwise."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.loud = False
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        self._count += 1
        await asyncio.sleep(max(0.0, self._start + self._count * 0.02 - loop.time()))
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        at = (self._count % 5) * 1920
        frame.planes[0].update(_TONE[at : at + 1920] if self.loud else bytes(1920))
        frame.sample_rate = 48000
        frame.pts = self._count * 960
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


def speaking(client: Any) -> list[bool]:
    return [m["speaking"] for m in client.of_type("peer.speaking")]


async def test_the_worker_tells_when_a_publisher_starts_and_stops_speaking(
    client, room_opener, worker
):
    await room_opener("r1", "vp8")
    alice = await client("r1", "alice")
    voice = TalkingTrack()
    await alice.offer(voice)
    await alice.wait_for(lambda: alice.of_type("peer.tracks"), within=10)
    await asyncio.sleep(0.5)
    assert speaking(alice) == []  # silence is not speech

    voice.loud = True
    await alice.wait_for(lambda: speaking(alice) == [True], within=3)
    voice.loud = False
    await alice.wait_for(lambda: speaking(alice) == [True, False], within=3)

    # a moderator's mute ends it at once, and nothing more is said while muted
    voice.loud = True
    await alice.wait_for(lambda: speaking(alice) == [True, False, True], within=3)
    await alice.send("peer.mute", kind="audio", muted=True)
    await alice.wait_for(lambda: speaking(alice) == [True, False, True, False], within=3)
    await asyncio.sleep(0.5)
    assert speaking(alice) == [True, False, True, False]


async def test_speaking_ends_when_the_audio_stops_coming(client, room_opener, worker):
    await room_opener("r1", "vp8")
    alice = await client("r1", "alice")
    voice = TalkingTrack()
    voice.loud = True
    await alice.offer(voice)
    await alice.wait_for(lambda: speaking(alice) == [True], within=10)
    sender = next(s for s in alice.pc.getSenders() if s.track is voice)
    sender.replaceTrack(None)  # the sender stops: no packet, no level; the stats loop notices
    await alice.wait_for(lambda: speaking(alice) == [True, False], within=5)
