"""Training recordings become the video-on-demand library: a composed playback file, served
with Range requests by scope, every playback audit-logged."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import av
import pytest

from records import accounts, sessions
from tests.helpers import IN_CI, T
from tests.media_peer import Peer, login_headers, media_app, until
from web import keys


@pytest.mark.slow
@pytest.mark.usefixtures("loopback")
async def test_training_playback_file_range_scope_and_audit(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    if shutil.which("ffmpeg") is None:
        if IN_CI:
            pytest.fail("CI=true but ffmpeg is not installed")
        pytest.skip("ffmpeg not installed: no composed playback here")
    client, settings, _seed = await media_app(aiohttp_client, tmp_path)
    trainer_h = await login_headers(client, "trainer")
    viewer_h = await login_headers(client, "dongfeng")
    trainer = Peer(await client.ws_connect("/ws", headers=trainer_h), "trainer")
    viewer = Peer(await client.ws_connect("/ws", headers=viewer_h), "viewer")
    try:
        await trainer.request("hello")
        await viewer.request("hello")
        created = await trainer.request("session.create", kind="training", title="信访条例培训")
        sid = created["session"]["id"]
        joined = await trainer.request("session.join", session=sid)
        await viewer.request("session.join", session=sid)
        await trainer.publish(sid)
        viewer.session = sid
        # a viewer publishes nothing: it offers a data channel only, to receive
        viewer.pc.createDataChannel("control")
        await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
        await viewer.request("media.offer", session=sid, sdp=viewer.pc.localDescription.sdp)
        me = joined["participant"]["id"]
        await until(
            lambda: viewer.frames_from(me, "video") > 20, 20 * T, "the viewer watches the trainer"
        )
        await asyncio.sleep(2)
        await trainer.request("session.end", session=sid)
    finally:
        await trainer.close()
        await viewer.close()

    app_store = client.server.app[keys.STORE]
    deadline = time.monotonic() + 60 * T
    playback: sessions.RecordingInfo | None = None
    while playback is None and time.monotonic() < deadline:
        async with app_store.transaction() as tx:
            playback = next(
                (r for r in await sessions.recordings_of(tx, sid) if r.state == "playback"), None
            )
        await asyncio.sleep(0.3)
    assert playback is not None, "no composed playback file"
    path = settings.recordings_dir / playback.path
    with av.open(str(path)) as container:
        assert {s.type for s in container.streams} == {"video", "audio"}
        assert float(container.duration or 0) / 1e6 > 1.5

    url = f"/api/recordings/{playback.id}/file"
    data = path.read_bytes()
    mid = len(data) // 2
    resp = await client.get(url, headers={**trainer_h, "Range": f"bytes={mid}-{mid + 99}"})
    assert resp.status == 206
    assert await resp.read() == data[mid : mid + 100]
    assert resp.headers["Content-Type"] == "video/mp4"
    # a sub-district's viewer may watch the district's training; a department outside may not
    assert (await client.get(url, headers={**viewer_h, "Range": "bytes=0-9"})).status == 206
    outsider = await login_headers(client, "housing")
    assert (await client.get(url, headers=outsider)).status == 403
    async with app_store.transaction() as tx:
        played = await accounts.audit_entries(tx, object_id=str(playback.id))
        refused = await accounts.audit_entries(tx, action="view_recording")
    assert [(e.action, e.outcome) for e in played] == [("playback", "ok")] * 2
    assert played[0].detail["range"] == "bytes=0-9"
    assert [(e.object_id, e.outcome) for e in refused] == [(sid, "denied")]
