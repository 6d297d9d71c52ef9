"""Failed logins count across every hub of a cluster (the bus's counters), not per hub."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

from config.ratelimit import FailureLimit
from gateway.app import create_app
from records.store import Store
from signaling.bus import MemoryBus, RedisBus
from tests.helpers import PASSWORD, make_settings, need_service, seed_store


async def test_failures_lock_a_key_until_its_bucket_refills_and_a_success_resets() -> None:
    bus = MemoryBus()
    throttle = FailureLimit(3, window_s=0.3)
    throttle.use(bus)
    for _ in range(3):
        assert not await throttle.locked("user:ann", "addr:1")
        await throttle.fail("user:ann", "addr:1")
    assert await throttle.locked("user:ann")
    assert await throttle.locked("addr:1")
    assert not await throttle.locked("user:bob")
    await asyncio.sleep(0.4)  # the bucket has refilled
    assert not await throttle.locked("user:ann")
    await throttle.fail("user:ann")
    await throttle.reset("user:ann")
    assert await bus.spend_tokens(FailureLimit.PREFIX + "user:ann", 10, 3, 0) == 3  # full
    await bus.close()


async def test_an_unreachable_bus_still_throttles_on_this_hub() -> None:
    dead = RedisBus("redis://127.0.0.1:1/0")  # nothing listens there
    throttle = FailureLimit(2, window_s=60)
    throttle.use(dead)
    await throttle.fail("user:ann")
    await throttle.fail("user:ann")
    assert await throttle.locked("user:ann")
    await dead.close()


async def test_two_hubs_on_one_redis_share_the_count(
    aiohttp_client: Any, tmp_path: Path, sqlite_url: str
) -> None:
    redis_url = need_service("GATEWAY_TEST_REDIS_URL", "Redis")
    prefix = "t" + secrets.token_hex(4)  # this test's own keys
    store = Store(sqlite_url)
    await store.start(migrate=True)
    await seed_store(store)
    await store.close()
    hubs = []
    for name in ("a", "b"):
        settings = make_settings(
            tmp_path / name,
            sqlite_url,
            redis={"url": redis_url, "prefix": prefix},
            server={"hub_id": f"hub-{name}"},
        )
        hubs.append(await aiohttp_client(create_app(settings, migrate=False)))
    hub_a, hub_b = hubs
    wrong = {"username": "reception", "password": "wrong password"}
    for _ in range(3):
        assert (await hub_a.post("/api/login", json=wrong)).status == 401
    for _ in range(2):
        assert (await hub_b.post("/api/login", json=wrong)).status == 401
    # five failures in all, on two hubs: the next attempt is refused on either
    right = {"username": "reception", "password": PASSWORD}
    assert (await hub_a.post("/api/login", json=right)).status == 429
    assert (await hub_b.post("/api/login", json=right)).status == 429
