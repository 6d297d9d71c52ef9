"""Bus hashes: a room's shared state (which worker serves whom), the same on both buses."""

from __future__ import annotations

import secrets

import pytest

from signaling.bus import Bus, MemoryBus, RedisBus
from tests.helpers import need_service


async def _hashes(bus: Bus, other: Bus) -> None:
    assert await bus.hash_all("room-peers:s1") == {}
    assert await bus.hash_set("room-peers:s1", "p1", "w1")
    assert await bus.hash_set("room-peers:s1", "p2", "w2")
    assert await other.hash_get("room-peers:s1", "p1") == "w1"
    assert await other.hash_all("room-peers:s1") == {"p1": "w1", "p2": "w2"}
    # only_new: the first hub to add a relay opens its room, a second one does not
    assert await bus.hash_set("room-relays:s1", "w2", "relay", only_new=True)
    assert not await other.hash_set("room-relays:s1", "w2", "relay", only_new=True)
    assert await other.hash_delete("room-peers:s1", "p1", "nobody") == 1
    assert await bus.hash_all("room-peers:s1") == {"p2": "w2"}
    await bus.hash_delete("room-peers:s1")
    assert await other.hash_get("room-peers:s1", "p2") is None
    # counters: how many participants each worker serves
    assert await bus.hash_incr("room-counts:s1", "w1", 1) == 1
    assert await other.hash_incr("room-counts:s1", "w1", 2) == 3
    assert await bus.hash_incr("room-counts:s1", "w1", -3) == 0
    await other.hash_delete("room-counts:s1")


async def test_memory_bus_hashes() -> None:
    bus = MemoryBus()
    await _hashes(bus, bus)
    await bus.close()


@pytest.mark.redis
async def test_redis_bus_hashes_are_shared_between_processes() -> None:
    url = need_service("GATEWAY_TEST_REDIS_URL", "Redis")
    prefix = "t" + secrets.token_hex(4)
    hub, other = RedisBus(url, prefix), RedisBus(url, prefix)
    try:
        await _hashes(hub, other)
        await hub.hash_delete("room-relays:s1")
    finally:
        await hub.close()
        await other.close()
