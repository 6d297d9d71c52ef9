"""A call through the real hub and worker is recorded in sync.

The resident's terminal publishes a source that flashes and beeps at the same instants. Its
recorded file must open with VP8 + Opus, last as long as the media flowed (within 5 %), and
keep every flash within 100 ms of its beep.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from records import sessions
from tests.helpers import T
from tests.media_peer import (
    BeepAudioTrack,
    FlashBeepClock,
    FlashVideoTrack,
    Peer,
    login_headers,
    media_app,
    until,
)
from tests.recorder.synthetic_media import av_offsets, decode_events, probe
from web import keys


@pytest.mark.slow
@pytest.mark.usefixtures("loopback")
async def test_recorded_call_keeps_audio_and_video_in_sync(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client, settings, seed = await media_app(aiohttp_client, tmp_path)
    cookie = await login_headers(client, "reception")
    kiosk = Peer(await client.ws_connect("/ws"), "kiosk")
    officer = Peer(await client.ws_connect("/ws", headers=cookie), "officer")
    try:
        await kiosk.request("hello", token=seed.terminals["QX-DFJD-HPSQ"])
        await officer.request("hello")
        visit = await kiosk.request("visit.request", category="housing")
        session, resident = visit["session"]["id"], visit["participant"]["id"]
        await officer.request("visit.accept", session=session)
        clock = FlashBeepClock()
        await kiosk.publish(session, FlashVideoTrack(clock), BeepAudioTrack(clock))
        await officer.publish(session)
        # the call's media starts when the resident's connection is up (the recorder starts at
        # the first keyframe that follows); the officer's own connection may come up later
        await until(lambda: kiosk.pc.connectionState == "connected", 15 * T, "resident connected")
        flowing = time.monotonic()
        await until(lambda: officer.frames_from(resident, "video") > 0, 15 * T, "media flows")
        await asyncio.sleep(6.5)
        await officer.request("session.end", session=session)
        call_s = time.monotonic() - flowing
    finally:
        await kiosk.close()
        await officer.close()

    app_store = client.server.app[keys.STORE]
    deadline = time.monotonic() + 15 * T
    rec: sessions.RecordingInfo | None = None
    while rec is None and time.monotonic() < deadline:
        async with app_store.transaction() as tx:
            rec = next(
                (
                    r
                    for r in await sessions.recordings_of(tx, session)
                    if r.participant_id == resident and r.sha256
                ),
                None,
            )
        await asyncio.sleep(0.2)
    assert rec is not None, "the resident's recording was not finalised"
    path = settings.recordings_dir / rec.path
    info = await asyncio.to_thread(probe, path)
    assert info["codecs"] == {"video": "vp8", "audio": "opus"}
    assert abs(info["end"] - call_s) <= 0.05 * call_s, (info["end"], call_s)
    flashes, beeps = await asyncio.to_thread(decode_events, path)
    offsets = av_offsets(flashes, beeps)
    assert len(offsets) >= 3, (flashes, beeps)
    worst = max(abs(o) for o in offsets)
    rounded = [round(o, 3) for o in offsets]
    print(f"recorded {info['end']:.2f} s of a {call_s:.2f} s call; A/V offsets {rounded}")
    assert worst <= 0.1, offsets
