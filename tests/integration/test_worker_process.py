"""The hub with Redis and a separate ``petition-gateway worker`` process.

A visit is placed on the worker process and media flows through it; killing the worker with
SIGKILL is noticed by the hub within 5 s and both participants are told.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from records.store import Store
from tests.helpers import PASSWORD, T, make_settings, need_service, seed_store
from tests.media_peer import Peer, until
from web import keys


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.usefixtures("loopback")
async def test_room_on_a_worker_process_and_its_death(aiohttp_client: Any, tmp_path: Path) -> None:
    from gateway.app import BUS, create_app

    redis_url = need_service("GATEWAY_TEST_REDIS_URL", "Redis")
    prefix = "t" + uuid.uuid4().hex[:8]
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}"
    settings = make_settings(tmp_path, db_url, redis={"url": redis_url, "prefix": prefix})
    store = Store(settings.database_url)
    await store.start(migrate=True)
    seed = await seed_store(store)
    await store.close()

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_REDIS_PREFIX": prefix,
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_DATABASE_URL": db_url,
        "GATEWAY_MEDIA_ICE_LOOPBACK_ONLY": "true",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "worker",
        "--id",
        "w-proc",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    client = await aiohttp_client(create_app(settings, media_worker=False))
    bus = client.server.app[BUS]
    kiosk = officer = None
    try:
        deadline = time.monotonic() + 30 * T
        while "w-proc" not in await bus.live_workers():
            assert worker.returncode is None, "the worker process exited"
            assert time.monotonic() < deadline, "the worker process never registered"
            await asyncio.sleep(0.2)

        login = await client.post(
            "/api/login", json={"username": "reception", "password": PASSWORD}
        )
        cookie = {"Cookie": f"pg_session={login.cookies['pg_session'].value}"}
        client.session.cookie_jar.clear()
        kiosk = Peer(await client.ws_connect("/ws"), "kiosk")
        officer = Peer(await client.ws_connect("/ws", headers=cookie), "officer")
        await kiosk.request("hello", token=seed.terminals["QX-DFJD-HPSQ"])
        await officer.request("hello")
        visit = await kiosk.request("visit.request", category="labour")
        session = visit["session"]["id"]
        accepted = await officer.request("visit.accept", session=session)
        await kiosk.publish(session)
        offer = await officer.publish(session)
        assert offer["worker"] == "w-proc"  # placed on the worker process, not in the hub
        resident, reception = visit["participant"]["id"], accepted["participant"]["id"]
        await until(
            lambda: (
                kiosk.frames_from(reception, "video") > 15
                and officer.frames_from(resident, "video") > 15
            ),
            20 * T,
            "media flows through the worker process",
        )

        worker.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await until(
            lambda: (
                kiosk.event("media.lost") is not None and officer.event("media.lost") is not None
            ),
            8 * T,
            "both participants are told the media worker was lost",
        )
        noticed = time.monotonic() - killed
        assert noticed <= 5.0 * T, f"worker death noticed after {noticed:.1f} s"
        print(f"worker death noticed after {noticed:.2f} s")
        assert client.server.app[keys.STORE] is not None
    finally:
        for peer in (kiosk, officer):
            if peer is not None:
                await peer.close()
        if worker.returncode is None:
            worker.kill()
        await worker.wait()
