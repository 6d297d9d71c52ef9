"""Offline composition of a two-participant session into one playable file."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import av
import pytest
from synthetic_media import Encoded, packets_for

from recorder.playback import compose
from recorder.room import RoomRecorder

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


async def test_compose_grid_with_mixed_audio(tmp_path: Path, source: list[Encoded]) -> None:
    recorder = RoomRecorder(tmp_path, "S-1", "vp8", {"kind": "mediation"})
    recorder.start()
    t0 = time.time()
    for peer, delay in (("a", 0.0), ("b", 1.0)):
        for kind, packet, arrival in packets_for(source, t0=t0 + delay, until=3.0):
            recorder.on_packet(peer, kind, packet, arrival)
    await recorder.close()

    out = await asyncio.to_thread(compose, tmp_path / "S-1", tmp_path / "S-1.mp4", cell=(160, 120))
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (320, 120)
        assert container.streams.audio
        assert float(container.duration / av.time_base) == pytest.approx(4.0, abs=0.3)
