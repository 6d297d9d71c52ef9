"""A whole recorded video visit through the real hub, the in-process media worker and the recorder.

aiortc client peers play the community terminal and the reception officer: they talk only to
``/ws`` (protocol v1), exactly as the browser apps do. The test asserts what the users would
notice: each side decodes the other's video and audio, both are told the visit is recorded,
and after the end the session record holds the recordings with their hashes, and the files
open with the expected codecs.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import av
import pytest

from records import accounts, sessions
from records.store import Store
from tests.helpers import T
from tests.media_peer import Peer, login_headers, media_app, until
from web import keys


@pytest.mark.slow
@pytest.mark.usefixtures("loopback")
async def test_recorded_visit_media_flows_both_ways(
    aiohttp_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, settings, seed = await media_app(aiohttp_client, tmp_path)
    cookie = await login_headers(client, "reception")

    kiosk = Peer(await client.ws_connect("/ws"), "kiosk")
    officer = Peer(await client.ws_connect("/ws", headers=cookie), "officer")
    try:
        await kiosk.request("hello", token=seed.terminals["QX-DFJD-HPSQ"])
        await officer.request("hello")
        visit = await kiosk.request("visit.request", category="housing")
        session = visit["session"]["id"]
        assert visit["position"] == 1
        queue = await officer.request("queue.watch")
        assert [v["session"] for v in queue["visits"]] == [session]
        accepted = await officer.request("visit.accept", session=session)
        assert accepted["recording"] is True  # the officer's screen shows it is recording
        resident = visit["participant"]["id"]
        reception = accepted["participant"]["id"]
        await until(
            lambda: kiosk.event("session.state") is not None, 5 * T, "kiosk told the visit is live"
        )
        assert kiosk.event("session.state")["recording"] is True  # type: ignore[index]

        started = time.monotonic()
        await kiosk.publish(session)
        await officer.publish(session)
        await until(
            lambda: (
                kiosk.frames_from(reception, "video") > 30
                and officer.frames_from(resident, "video") > 30
            ),
            20 * T,
            "both sides decode the other's video",
        )
        first_frames_s = time.monotonic() - started
        await until(
            lambda: (
                kiosk.frames_from(reception, "audio") > 20
                and officer.frames_from(resident, "audio") > 20
            ),
            10 * T,
            "both sides decode the other's audio",
        )

        # each side is shown that the other is speaking (their tone is loud)
        def speaks(peer: Peer, who: str) -> bool:
            return any(
                e["type"] == "media.speaking" and e["participant"] == who and e["speaking"]
                for e in peer.events
            )

        await until(
            lambda: speaks(officer, resident) and speaks(kiosk, reception),
            5 * T,
            "both sides see the other speaking",
        )
        # connection quality reaches the officer's console and /metrics
        await until(
            lambda: officer.event("media.stats") is not None, 6 * T, "officer sees media stats"
        )
        admin_cookie = await login_headers(client, "bureau_admin")
        metrics = await (await client.get("/metrics", headers=admin_cookie)).text()
        # prometheus_client writes label names sorted; their order carries no meaning
        assert f'gateway_peer_fps{{participant="{resident}",session="{session}"}}' in metrics
        await asyncio.sleep(1)  # a little more call to record
        await officer.request("session.end", session=session, outcome="registered")
        await until(
            lambda: kiosk.event("session.ended") is not None, 5 * T, "kiosk gets the receipt"
        )
        receipt = kiosk.event("session.ended")["receipt"]  # type: ignore[index]
        assert receipt["session"] == session
        await kiosk.request("visit.rate", session=session, rating=5)
    finally:
        await kiosk.close()
        await officer.close()

    store = client.server.app[keys.STORE]

    async def recorded() -> list[sessions.RecordingInfo]:
        async with store.transaction() as tx:
            return [r for r in await sessions.recordings_of(tx, session) if r.sha256]

    deadline = time.monotonic() + 15 * T
    recs: list[sessions.RecordingInfo] = []
    while time.monotonic() < deadline:
        recs = await recorded()
        if len(recs) >= 2:
            break
        await asyncio.sleep(0.2)
    assert {r.participant_id for r in recs} == {resident, reception}, recs
    async with store.transaction() as tx:
        record = await sessions.get_session(tx, session)
    assert record.rating == 5
    assert record.outcome == "registered"
    assert all(p.joined_at and p.left_at for p in record.participants)
    for rec in recs:
        path = settings.recordings_dir / rec.path
        with av.open(str(path)) as container:
            codecs = {s.codec_context.name for s in container.streams}
        assert "vp8" in codecs
        assert "opus" in codecs
        assert len(rec.sha256) == 64
    print(f"first frames both ways after {first_frames_s:.2f} s")

    # `petition-gateway recordings verify` re-hashes the files and the chain
    await client.close()  # the manifest is final once the worker closed the room
    from gateway.cli import main

    monkeypatch.setenv("GATEWAY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["recordings", "verify"]) == 0
    assert "all recordings and the manifest chain verify" in capsys.readouterr().out
    victim = settings.recordings_dir / recs[0].path
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert await asyncio.to_thread(main, ["recordings", "verify", "--session", session]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out
    assert victim.name in out

    # retention: past the visit's retention the sweeper deletes the media, keeps the manifest
    # and hashes, marks the rows deleted and audit-logs each deletion
    from gateway.recordings import RecordingsKeeper
    from signaling.bus import MemoryBus

    store = Store(settings.database_url)
    await store.start(migrate=False)
    keeper = RecordingsKeeper(settings, store, MemoryBus(), sweep=False)
    later = time.time() + (settings.retention_days["visit"] + 1) * 86400
    assert await keeper.sweep_once(now=later) == len(recs)
    assert list((settings.recordings_dir / session).glob("*/manifest.json"))
    async with store.transaction() as tx:
        rows = await sessions.recordings_of(tx, session)
        audit = await accounts.audit_entries(tx, action="recording_delete")
    await store.close()
    assert all(r.deleted and r.sha256 for r in rows if r.participant_id)
    assert {e.object_id for e in audit} == {str(r.id) for r in recs}
    assert {e.detail["path"] for e in audit} == {r.path for r in recs}
