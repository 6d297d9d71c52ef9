"""Recording runs through the real hub and media workers: nothing a moderator or a crash does
loses a recording, and every run is in the database, the chain and on disk.

aiortc client peers play the terminal and the officer over ``/ws``, as the browser apps do.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import av
import pytest

from records import recordings, sessions
from records.store import Store
from tests.cluster_kit import WorkerProcess, by_id, start_workers, worker_env
from tests.helpers import PASSWORD, T, make_settings, need_service, postgres_schema_url, seed_store
from tests.media_peer import Peer, login_headers, media_app, until, video_both_ways
from web import keys


async def _rows(store: Store, session: str) -> tuple[list[Any], list[Any]]:
    async with store.transaction() as tx:
        files = [r for r in await sessions.recordings_of(tx, session) if r.sha256]
        runs = await recordings.runs_of(tx, session)
    return files, runs


async def _verify_cli(settings: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from gateway.cli import main

    monkeypatch.setenv("GATEWAY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    monkeypatch.delenv("GATEWAY_REDIS_URL", raising=False)
    out = Path(settings.data_dir) / "verify.json"

    def run() -> int:
        import contextlib
        import io

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            status = main(["recordings", "verify", "--json"])
        out.write_text(buffer.getvalue())
        return status

    status = await asyncio.to_thread(run)
    report: dict[str, Any] = json.loads(out.read_text())
    assert status == (0 if report["ok"] else 1)
    return report


def _plays(path: Path) -> int:
    frames = 0
    with av.open(str(path)) as container:
        for _ in container.decode(video=0):
            frames += 1
    return frames


@pytest.mark.slow
@pytest.mark.usefixtures("loopback")
async def test_recording_toggled_twice_keeps_three_runs(
    aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # visits are recorded on demand here, so the officer can turn it off and on
    client, settings, seed = await media_app(
        aiohttp_client,
        tmp_path,
        media={"in_process_worker": True},
        recording={"automatic": ["mediation", "training", "field"]},
    )
    cookie = await login_headers(client, "reception")
    kiosk = Peer(await client.ws_connect("/ws"), "kiosk")
    officer = Peer(await client.ws_connect("/ws", headers=cookie), "officer")
    try:
        await kiosk.request("hello", token=seed.terminals["QX-DFJD-HPSQ"])
        await officer.request("hello")
        visit = await kiosk.request("visit.request", category="housing")
        session = visit["session"]["id"]
        accepted = await officer.request("visit.accept", session=session)
        assert accepted["recording"] is False
        resident, reception = visit["participant"]["id"], accepted["participant"]["id"]
        await kiosk.publish(session)
        await officer.publish(session)
        await video_both_ways(
            kiosk, officer, resident, reception, "media flows both ways", frames=10
        )
        for active in (True, False, True, False, True):
            await officer.request("recording.set", session=session, active=active)
            await asyncio.sleep(2.0 if active else 0.5)
        await officer.request("session.end", session=session, outcome="registered")
    finally:
        await kiosk.close()
        await officer.close()

    store = client.server.app[keys.STORE]
    deadline = time.monotonic() + 20 * T
    files: list[Any] = []
    runs: list[Any] = []
    while time.monotonic() < deadline:
        files, runs = await _rows(store, session)
        if len(runs) == 3 and len(files) == 6:
            break
        await asyncio.sleep(0.2)
    assert len(runs) == 3, runs
    assert len({r.run_id for r in runs}) == 3
    assert [r.chain_index for r in runs] == sorted(r.chain_index for r in runs)
    # each run has both participants' files, each file on disk and playable
    for run in runs:
        mine = [f for f in files if f.path.startswith(f"{session}/{run.run_id}/")]
        assert {f.participant_id for f in mine} == {resident, reception}, (run, files)
    for f in files:
        assert _plays(settings.recordings_dir / f.path) > 10
    await client.close()

    report = await _verify_cli(settings, monkeypatch)
    assert report["problems"] == []
    assert report["runs"] == 3
    assert report["files"] == 6
    assert report["head"]["length"] == runs[-1].chain_index


async def _cluster_settings(tmp_path: Path) -> tuple[Any, Any, dict[str, str], Any]:
    redis_url = need_service("GATEWAY_TEST_REDIS_URL", "Redis")
    db_url, drop = await postgres_schema_url()
    prefix = "t" + uuid.uuid4().hex[:8]
    settings = make_settings(tmp_path, db_url, redis={"url": redis_url, "prefix": prefix}, media={})
    store = Store(settings.database_url)
    await store.start(migrate=True)
    seed = await seed_store(store)
    await store.close()
    return settings, seed, worker_env(redis_url, prefix, settings.data_dir, db_url), drop


async def _live_visit(client: Any, seed: Any) -> tuple[Peer, Peer, str, str, str]:
    login = await client.post("/api/login", json={"username": "reception", "password": PASSWORD})
    cookie = {"Cookie": f"pg_session={login.cookies['pg_session'].value}"}
    client.session.cookie_jar.clear()
    kiosk = Peer(await client.ws_connect("/ws"), "kiosk")
    officer = Peer(await client.ws_connect("/ws", headers=cookie), "officer")
    await kiosk.request("hello", token=seed.terminals["QX-DFJD-HPSQ"])
    await officer.request("hello")
    visit = await kiosk.request("visit.request", category="labour")
    session = visit["session"]["id"]
    accepted = await officer.request("visit.accept", session=session)
    return kiosk, officer, session, visit["participant"]["id"], accepted["participant"]["id"]


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.usefixtures("loopback")
async def test_runs_finalised_while_no_hub_listens_are_stored_when_a_hub_starts(
    aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.app import BUS, create_app

    settings, seed, env, drop = await _cluster_settings(tmp_path)
    client = None
    workers: list[WorkerProcess] = []
    try:
        client = await aiohttp_client(create_app(settings, media_worker=False))
        workers = await start_workers(client.server.app[BUS], ("w-alone",), env, tmp_path)
        kiosk, officer, session, resident, reception = await _live_visit(client, seed)
        try:
            await kiosk.publish(session)
            await officer.publish(session)
            await video_both_ways(
                kiosk, officer, resident, reception, "media flows through the worker process"
            )
            # every hub goes away; the worker records on, then finalises with nobody listening
            await client.close()
            await asyncio.sleep(1.0)
            await workers[0].stop()  # SIGTERM: it closes its rooms and their recordings
            assert workers[0].proc is not None
            assert workers[0].proc.returncode == 0
        finally:
            await kiosk.close()
            await officer.close()
        chained = (settings.recordings_dir / "chain.jsonl").read_text().splitlines()
        assert len(chained) == 1
        store = Store(settings.database_url)
        await store.start(migrate=False)
        try:
            files, runs = await _rows(store, session)
            assert runs == []  # the event was lost with no hub
            # a hub starts again: it finds the run on disk and stores every row
            client = await aiohttp_client(create_app(settings, media_worker=False))
            deadline = time.monotonic() + 10 * T
            while time.monotonic() < deadline and not runs:
                files, runs = await _rows(store, session)
                await asyncio.sleep(0.2)
            assert [r.chain_index for r in runs] == [1]
            assert {f.participant_id for f in files} == {resident, reception}
            assert all(f.state == "closed" and f.ended_at for f in files)
            await client.close()
        finally:
            await store.close()
        report = await _verify_cli(settings, monkeypatch)
        assert report["problems"] == []
        assert report["files"] == 2
    finally:
        if client is not None:
            await client.close()  # before its database goes
        for w in workers:
            await w.stop()
        await drop()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.usefixtures("loopback")
async def test_a_killed_workers_part_and_the_next_workers_part_are_both_kept(
    aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.app import BUS, create_app

    settings, seed, env, drop = await _cluster_settings(tmp_path)
    kiosk = officer = client = None
    workers: list[WorkerProcess] = []
    try:
        client = await aiohttp_client(create_app(settings, media_worker=False))
        workers = await start_workers(client.server.app[BUS], ("w-1", "w-2"), env, tmp_path)
        kiosk, officer, session, resident, reception = await _live_visit(client, seed)
        await kiosk.publish(session)
        first = (await officer.publish(session))["worker"]
        await video_both_ways(
            kiosk, officer, resident, reception, "media flows through the first worker"
        )
        by_id(workers, first).kill()
        await until(
            lambda: (
                kiosk.event("media.lost") is not None and officer.event("media.lost") is not None
            ),
            8 * T,
            "both are told the media worker was lost",
        )
        # both offer again, as the apps do on media.lost: the room reopens on the other worker
        await kiosk.reconnect()
        second = (await officer.reconnect())["worker"]
        assert second != first
        await video_both_ways(
            kiosk, officer, resident, reception, "media flows through the second worker"
        )
        await officer.request("session.end", session=session, outcome="registered")
        store = client.server.app[keys.STORE]
        deadline = time.monotonic() + 30 * T
        runs: list[Any] = []
        files: list[Any] = []
        while time.monotonic() < deadline:
            files, runs = await _rows(store, session)
            if len(runs) == 2:
                break
            await asyncio.sleep(0.3)
        # the dead worker's run was closed by the live one (recovered, up to its last data)
        assert sorted(r.state for r in runs) == ["closed", "recovered"], runs
        for run in runs:
            mine = [f for f in files if f.path.startswith(f"{session}/{run.run_id}/")]
            assert {f.participant_id for f in mine} == {resident, reception}, (run, files)
            for f in mine:
                assert _plays(settings.recordings_dir / f.path) > 10
        await client.close()
        report = await _verify_cli(settings, monkeypatch)
        assert report["problems"] == []
        assert report["runs"] == 2
    finally:
        for peer in (kiosk, officer):
            if peer is not None:
                await peer.close()
        if client is not None:
            await client.close()  # before its database goes
        for w in workers:
            await w.stop()
        await drop()


@pytest.mark.slow
@pytest.mark.usefixtures("loopback")
async def test_a_hub_killed_mid_visit_leaves_a_record_that_ends_with_its_recording(
    aiohttp_client: Any, tmp_path: Path, unused_tcp_port: int
) -> None:
    import aiohttp

    from gateway.app import create_app

    db_url = f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}"
    settings = make_settings(tmp_path, db_url, media={"in_process_worker": True})
    store = Store(settings.database_url)
    await store.start(migrate=True)
    seed = await seed_store(store)
    await store.close()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_DATABASE_URL": db_url,
        "GATEWAY_MEDIA_ICE_LOOPBACK_ONLY": "true",
    }
    hub = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        "--port",
        str(unused_tcp_port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{unused_tcp_port}"
    http = aiohttp.ClientSession()
    peers: list[Peer] = []
    try:
        deadline = time.monotonic() + 30 * T
        while True:
            try:
                async with http.get(f"{base}/healthz") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                pass
            assert hub.returncode is None, "the hub exited"
            assert time.monotonic() < deadline, "the hub never answered"
            await asyncio.sleep(0.2)
        async with http.post(
            f"{base}/api/login", json={"username": "reception", "password": PASSWORD}
        ) as resp:
            assert resp.status == 200
            cookie = {"Cookie": f"pg_session={resp.cookies['pg_session'].value}"}
        kiosk = Peer(await http.ws_connect(f"{base}/ws"), "kiosk")
        officer = Peer(await http.ws_connect(f"{base}/ws", headers=cookie), "officer")
        peers = [kiosk, officer]
        await kiosk.request("hello", token=seed.terminals["QX-DFJD-HPSQ"])
        await officer.request("hello")
        visit = await kiosk.request("visit.request", category="labour")
        session = visit["session"]["id"]
        accepted = await officer.request("visit.accept", session=session)
        resident, reception = visit["participant"]["id"], accepted["participant"]["id"]
        await kiosk.publish(session)
        await officer.publish(session)
        await video_both_ways(kiosk, officer, resident, reception, "media flows")
        await asyncio.sleep(12.0)  # longer than the hub's activity note (10 s)
        hub.send_signal(signal.SIGKILL)
        killed_at = time.time()
        await hub.wait()
    finally:
        for peer in peers:
            await peer.close()
        await http.close()
        if hub.returncode is None:
            hub.kill()
            await hub.wait()

    # the hub starts again on the same data: the session was interrupted, its recording is
    # recovered, and the record says it lasted until (at least) the recording's end
    client = await aiohttp_client(create_app(settings, media_worker=True))
    store = client.server.app[keys.STORE]
    deadline = time.monotonic() + 20 * T
    runs: list[Any] = []
    while time.monotonic() < deadline and not runs:
        files, runs = await _rows(store, session)
        await asyncio.sleep(0.2)
    assert [r.state for r in runs] == ["recovered"]
    async with store.transaction() as tx:
        record = await sessions.get_session(tx, session)
    assert record.state.value == "interrupted"
    assert record.ended_at is not None
    media_end = max(f.ended_at for f in files if f.ended_at)
    assert record.ended_at >= media_end
    assert killed_at - record.ended_at.timestamp() < 4.0, (killed_at, record.ended_at)
    present = [p for p in record.participants if p.joined_at]
    assert {p.id for p in present} >= {resident, reception}
    assert all(p.left_at == record.ended_at for p in present)
