"""``Bus.listeners``: how the hubs tell a dead worker process from a live one at once."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from signaling.bus import Bus, MemoryBus, RedisBus
from tests.helpers import need_service


async def _settles(bus: Bus, want: dict[str, int]) -> None:
    """Redis applies a (un)subscribe sent on another connection a moment later."""
    async with asyncio.timeout(2):
        while await bus.listeners(list(want)) != want:  # noqa: ASYNC110  (polling Redis)
            await asyncio.sleep(0.01)


async def _counts_follow_subscriptions(bus: Bus, other: Bus) -> None:
    await _settles(bus, {"media.worker.a": 0, "media.worker.b": 0})
    sub = await other.subscribe("media.worker.a")
    await _settles(bus, {"media.worker.a": 1, "media.worker.b": 0})
    await sub.close()
    await _settles(bus, {"media.worker.a": 0, "media.worker.b": 0})
    assert await bus.listeners([]) == {}


async def test_memory_bus_counts_subscriptions() -> None:
    bus = MemoryBus()
    await _counts_follow_subscriptions(bus, bus)
    await bus.close()


@pytest.mark.redis
async def test_redis_bus_counts_subscribers_of_other_processes() -> None:
    url = need_service("GATEWAY_TEST_REDIS_URL", "Redis")
    prefix = "t" + secrets.token_hex(4)
    hub, worker = RedisBus(url, prefix), RedisBus(url, prefix)
    try:
        await _counts_follow_subscriptions(hub, worker)
        # a process whose connection closes (as a killed one's does) counts no more
        await worker.subscribe("media.worker.b")
        await _settles(hub, {"media.worker.b": 1})
        await worker.close()
        await _settles(hub, {"media.worker.b": 0})
    finally:
        await hub.close()
        await worker.close()
