"""One training cascaded over three media worker processes (issue 18).

Two hubs (in this process) and three ``petition-gateway worker`` processes share one Redis
and one database. The hubs spread a room over every live worker (``media.spread_cpu_pct`` 0,
as if each were near its capacity): the trainer publishes to the room's home (its origin),
the viewers land on all three workers, the two relays pull the trainer's media from the origin
over worker-to-worker WebRTC links, and every viewer decodes the trainer's video. A viewer on
a relay is promoted: its publishing offer is turned into a new connection to the home, which
records it, and the trainer sees it. A relay
worker is SIGKILLed: only its viewers are told ``media.lost``; they offer again, land on the
surviving workers and decode video again, while the others never stopped. Then the origin is
SIGKILLed: media ends until the trainer offers again; its connection lands on the last worker,
which becomes the room's home and origin, records the training in a new run, and every viewer
decodes the trainer again (those that stayed connected without a new offer of their own).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from records import sessions
from records.store import Store
from tests.cluster_kit import by_id, start_workers, worker_env
from tests.helpers import T, make_settings, need_service, postgres_schema_url, seed_store
from tests.media_peer import Peer, login_headers, until

pytestmark = [pytest.mark.redis, pytest.mark.slow]

#: seeded accounts that may watch a district training, one connection each
VIEWERS = ("housing", "dongfeng", "hehua", "mediator", "leader", "reception")


async def until_async(condition: Any, within: float, what: str) -> None:
    """Wait until the coroutine function ``condition`` returns true."""
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


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


@pytest.mark.usefixtures("loopback")
async def test_a_training_spans_three_workers_and_survives_losing_a_relay_then_its_origin(
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
            media={"in_process_worker": False, "spread_cpu_pct": 0},
        )

    hubs = [
        await aiohttp_client(create_app(settings("hub-a"), media_worker=False)),
        await aiohttp_client(create_app(settings("hub-b"), media_worker=False)),
    ]
    bus = hubs[0].server.app[BUS]
    env = worker_env(redis_url, prefix, tmp_path / "data", database)
    env["GATEWAY_SERVER_LOG_LEVEL"] = os.environ.get("CASCADE_LOG", "WARNING")
    workers = await start_workers(bus, ("w-one", "w-two", "w-three"), env, tmp_path)
    peers: list[Peer] = []
    try:
        trainer = Peer(
            await hubs[0].ws_connect("/ws", headers=await login_headers(hubs[0], "trainer")), "t"
        )
        peers.append(trainer)
        await trainer.request("hello")
        created = await trainer.request(
            "session.create", kind="training", title="信访条例培训", unit_id=seed.units["QX"]
        )
        session = created["session"]["id"]
        trainer_id = (await trainer.request("session.join", session=session))["participant"]["id"]
        origin = (await trainer.publish(session))["worker"]

        viewers: list[Peer] = []
        placed: dict[str, str] = {}  # viewer name -> worker
        pids: dict[str, str] = {}  # viewer name -> participant id
        for n, name in enumerate(VIEWERS):
            hub = hubs[n % 2]  # any hub places any viewer: the room's state is on the bus
            viewer = Peer(await hub.ws_connect("/ws", headers=await login_headers(hub, name)), name)
            peers.append(viewer)
            viewers.append(viewer)
            await viewer.request("hello")
            joined = await viewer.request("session.join", session=session)
            assert joined["participant"]["role"] == "viewer"
            pids[name] = joined["participant"]["id"]
            placed[name] = (await viewer.watch(session))["worker"]
        # round robin by the room's peers per worker (ties by measured CPU)
        assert set(placed.values()) == {"w-one", "w-two", "w-three"}, placed
        assert max(Counter(placed.values()).values()) <= 3, placed

        def all_see(frames: int, who: list[Peer]) -> bool:
            return all(v.frames_from(trainer_id, "video") > frames for v in who)

        started = time.monotonic()
        await until(lambda: all_see(30, viewers), 30 * T, "every viewer decodes the trainer")
        took = time.monotonic() - started
        print(f"6 viewers on 3 workers decode the trainer's video after {took:.2f} s")
        assert all(v.frames_from(trainer_id, "audio") > 20 for v in viewers)

        relay = next(w for w in ("w-one", "w-two", "w-three") if w != origin)
        spare = next(w for w in ("w-one", "w-two", "w-three") if w not in (origin, relay))

        # a viewer on a relay is promoted: its media goes out from the home, which records it
        speaker = next(v for v in viewers if placed[v.name] == spare)
        await trainer.request("training.promote", session=session, participant=pids[speaker.name])
        moved = await speaker.publish(session)
        assert moved.get("moved") is True
        await until(lambda: speaker.event("media.lost") is not None, 5 * T, "the speaker moves")
        assert (await speaker.reconnect())["worker"] == origin
        await until(
            lambda: (
                trainer.frames_from(pids[speaker.name], "video") > 15
                and speaker.frames_from(trainer_id, "video") > 15
            ),
            20 * T,
            "the trainer sees the promoted speaker, who still sees the trainer",
        )
        viewers.remove(speaker)  # a publisher now, at the origin

        on_relay = [v for v in viewers if placed[v.name] == relay]
        others = [v for v in viewers if placed[v.name] != relay]
        killed = by_id(workers, relay).kill()
        await until(
            lambda: all(v.event("media.lost") is not None for v in on_relay),
            8 * T,
            "the dead relay's viewers are told their media was lost",
        )
        noticed = time.monotonic() - killed
        seen = {v.name: v.frames_from(trainer_id, "video") for v in others}
        again = [(await v.reconnect(watch=True))["worker"] for v in on_relay]
        assert relay not in again, again
        placed.update({v.name: w for v, w in zip(on_relay, again, strict=True)})
        await until(
            lambda: all_see(30, on_relay), 20 * T, "the moved viewers decode the trainer again"
        )
        recovered = time.monotonic() - killed
        print(
            f"relay death noticed after {noticed:.2f} s; its viewers' video back {recovered:.2f} s"
        )
        # the others never lost their media and kept receiving
        assert all(v.event("media.lost") is None for v in others)
        await until(
            lambda: all(v.frames_from(trainer_id, "video") > seen[v.name] + 30 for v in others),
            10 * T,
            "the other viewers keep receiving",
        )
        assert trainer.event("media.lost") is None

        # the origin dies: media ends until the trainer offers again; recording goes on
        async def trainer_recorded(after: dt.datetime | None = None) -> bool:
            async with store.transaction() as tx:
                rows = await sessions.recordings_of(tx, session)
            return any(
                r.participant_id == trainer_id
                and r.started_at is not None
                and (after is None or r.started_at > after)
                for r in rows
            )

        store = Store(database)
        await store.start(migrate=False)

        async def speaker_recorded() -> bool:
            async with store.transaction() as tx:
                rows = await sessions.recordings_of(tx, session)
            return any(r.participant_id == pids[speaker.name] for r in rows)

        try:
            await until_async(trainer_recorded, 10 * T, "the origin records the trainer")
            await until_async(speaker_recorded, 10 * T, "the origin records the speaker")
            killed_at = dt.datetime.now(dt.UTC)
            by_id(workers, origin).kill()
            on_origin = [v for v in viewers if placed[v.name] == origin]
            await until(
                lambda: (
                    trainer.event("media.lost") is not None
                    and all(v.event("media.lost") is not None for v in on_origin)
                ),
                8 * T,
                "the trainer and the origin's viewers are told",
            )
            last = next(w.id for w in workers if w.id not in (relay, origin))
            stayed = [v for v in viewers if v not in on_origin]
            assert all(v.count("media.lost") == (1 if v in on_relay else 0) for v in stayed), [
                (v.name, placed[v.name], v.count("media.lost")) for v in viewers
            ]
            seen = {v.name: v.frames_from(trainer_id, "video") for v in stayed}
            assert (await trainer.reconnect())["worker"] == last
            for v in on_origin:
                assert (await v.reconnect(watch=True))["worker"] == last
            await until(
                lambda: (
                    all_see(30, on_origin)
                    and all(v.frames_from(trainer_id, "video") > seen[v.name] + 30 for v in stayed)
                ),
                20 * T,
                "every viewer decodes the trainer again from its new origin",
            )
            await until_async(
                lambda: trainer_recorded(after=killed_at), 10 * T, "recorded in a new run"
            )
        finally:
            await store.close()
    finally:
        for peer in peers:
            await peer.close()
        for w in workers:
            await w.stop()
