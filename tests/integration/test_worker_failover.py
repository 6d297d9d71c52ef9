"""A media worker dies under a live visit whose members sit on two hubs (issue #13, 10).

Two hubs (in this process) and two ``petition-gateway worker`` processes share one Redis and
one database. The kiosk is on hub A, the officer on hub B. The worker serving the visit is
SIGKILLed: whichever hub notices first releases the placement, and each hub still tells its
own member (``media.lost``). Both offer again from new peer connections: the room is placed on
the surviving worker, re-opened with recording, the subscriptions are rebuilt, and media flows
both ways again, recorded in new files.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from records import sessions
from records.store import Store
from tests.cluster_kit import by_id, start_workers, worker_env
from tests.helpers import PASSWORD, T, make_settings, need_service, postgres_schema_url, seed_store
from tests.media_peer import Peer, login_headers, media_app, until

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[str]:
    """PostgreSQL when configured (two hubs write at once), else one SQLite file."""
    if os.environ.get("GATEWAY_TEST_POSTGRES_URL"):
        url, drop = await postgres_schema_url()
        try:
            yield url
        finally:
            await drop()
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}"


async def _login(client: Any, username: str) -> dict[str, str]:
    resp = await client.post("/api/login", json={"username": username, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    client.session.cookie_jar.clear()
    return {"Cookie": f"pg_session={resp.cookies['pg_session'].value}"}


@pytest.mark.usefixtures("loopback")
async def test_members_on_both_hubs_recover_from_a_dead_worker(
    aiohttp_client: Any, tmp_path: Path, database: str
) -> None:
    from gateway.app import BUS, create_app  # noqa: PLC0415

    redis_url = need_service("GATEWAY_TEST_REDIS_URL", "Redis")
    prefix = "t" + uuid.uuid4().hex[:8]
    store = Store(database)
    await store.start(migrate=True)
    seed = await seed_store(store)
    await store.close()

    def settings(hub: str) -> Any:
        return make_settings(
            tmp_path,
            database,
            redis={"url": redis_url, "prefix": prefix},
            server={"hub_id": hub},
        )

    hub_a = await aiohttp_client(create_app(settings("hub-a"), media_worker=False))
    hub_b = await aiohttp_client(create_app(settings("hub-b"), media_worker=False))
    bus = hub_a.server.app[BUS]
    env = worker_env(redis_url, prefix, tmp_path / "data", database)
    workers = await start_workers(bus, ("w-one", "w-two"), env, tmp_path)
    peers: list[Peer] = []
    store = Store(database)
    await store.start(migrate=False)
    try:
        kiosk = Peer(await hub_a.ws_connect("/ws"), "kiosk")
        peers.append(kiosk)
        officer = Peer(await hub_b.ws_connect("/ws", headers=await _login(hub_b, "reception")), "o")
        peers.append(officer)
        await kiosk.request("hello", token=seed.terminals["QX-DFJD-HPSQ"])
        await officer.request("hello")
        visit = await kiosk.request("visit.request", category="labour")
        session = visit["session"]["id"]
        accepted = await officer.request("visit.accept", session=session)
        resident, reception = visit["participant"]["id"], accepted["participant"]["id"]
        first = (await kiosk.publish(session))["worker"]
        assert (await officer.publish(session))["worker"] == first

        def flowing() -> bool:
            return (
                kiosk.frames_from(reception, "video") > 15
                and officer.frames_from(resident, "video") > 15
            )

        await until(flowing, 20 * T, "media flows through the first worker")

        async def recorded(
            before: dt.datetime | None = None, after: dt.datetime | None = None
        ) -> set[str]:
            """Members with a recording row that started before (or after) a time."""
            async with store.transaction() as tx:
                rows = await sessions.recordings_of(tx, session)
            return {
                r.participant_id or ""
                for r in rows
                if r.started_at is not None
                and (before is None or r.started_at < before)
                and (after is None or r.started_at > after)
            }

        deadline = time.monotonic() + 10 * T
        while await recorded() != {resident, reception}:
            assert time.monotonic() < deadline, "the first worker records both members"
            await asyncio.sleep(0.2)

        killed_at = dt.datetime.now(dt.UTC)
        killed = by_id(workers, first).kill()
        await until(
            lambda: (
                kiosk.event("media.lost") is not None and officer.event("media.lost") is not None
            ),
            8 * T,
            "both members, on different hubs, are told the media worker was lost",
        )
        noticed = time.monotonic() - killed
        assert noticed <= 5.0 * T, f"worker death noticed after {noticed:.1f} s"

        again = await asyncio.gather(kiosk.reconnect(), officer.reconnect())
        survivor = next(w.id for w in workers if w.id != first)
        assert [r["worker"] for r in again] == [survivor, survivor]
        await until(flowing, 15 * T, "media flows again through the surviving worker")
        recovered = time.monotonic() - killed
        print(f"worker death noticed after {noticed:.2f} s; video back after {recovered:.2f} s")
        assert recovered <= 5.0 * T, f"video back {recovered:.1f} s after the kill"
        await asyncio.sleep(1.0)  # each member was told once, by its own hub
        assert (kiosk.count("media.lost"), officer.count("media.lost")) == (1, 1)

        # the surviving worker records the visit in new files, one per member
        deadline = time.monotonic() + 10 * T
        while await recorded(after=killed_at) != {resident, reception}:
            assert time.monotonic() < deadline, f"recorded after: {await recorded(after=killed_at)}"
            await asyncio.sleep(0.2)
        await officer.request("session.end", session=session)
        deadline = time.monotonic() + 15 * T
        while True:
            async with store.transaction() as tx:
                rows = await sessions.recordings_of(tx, session)
            after = [r for r in rows if r.started_at and r.started_at > killed_at]
            if all(r.state != "open" and r.frames > 0 for r in after):
                break
            assert time.monotonic() < deadline, f"new recording files not closed: {after}"
            await asyncio.sleep(0.2)
        # the dead worker's run is kept beside the new one (each run has its own directory)
        assert await recorded(before=killed_at) == {resident, reception}
    finally:
        for peer in peers:
            await peer.close()
        await store.close()
        for w in workers:
            await w.stop()


@pytest.mark.usefixtures("loopback")
async def test_a_new_connection_replaces_a_failed_one_on_the_same_worker(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """A browser whose connection failed (the worker is fine) offers from a new one with
    ``restart``: the worker's old peer is closed, the new one publishes and subscribes."""
    client, _settings, seed = await media_app(aiohttp_client, tmp_path)
    kiosk = Peer(await client.ws_connect("/ws"), "kiosk")
    officer = Peer(
        await client.ws_connect("/ws", headers=await login_headers(client, "reception")), "o"
    )
    try:
        await kiosk.request("hello", token=seed.terminals["QX-DFJD-HPSQ"])
        await officer.request("hello")
        visit = await kiosk.request("visit.request", category="labour")
        session = visit["session"]["id"]
        accepted = await officer.request("visit.accept", session=session)
        resident, reception = visit["participant"]["id"], accepted["participant"]["id"]
        await kiosk.publish(session)
        await officer.publish(session)

        def flowing() -> bool:
            return (
                kiosk.frames_from(reception, "video") > 15
                and officer.frames_from(resident, "video") > 15
            )

        await until(flowing, 20 * T, "media flows")
        kiosk_saw = kiosk.frames_from(reception, "video")
        await officer.reconnect()
        await until(
            lambda: (
                officer.frames_from(resident, "video") > 15
                and kiosk.frames_from(reception, "video") > kiosk_saw + 15
            ),
            15 * T,
            "media flows again over the officer's new connection, both ways",
        )
        assert officer.event("media.lost") is None
    finally:
        await kiosk.close()
        await officer.close()
