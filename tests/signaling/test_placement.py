"""Where the hub places a new room: the least loaded live media worker."""

from __future__ import annotations

from signaling.bus import MemoryBus
from signaling.placement import Placement


async def test_a_room_goes_to_the_worker_with_fewest_peers_unless_it_is_busy():
    bus = MemoryBus()
    placement = Placement(bus)
    # w1 serves a training (many cheap viewers), w2 some visits (fewer, costlier peers)
    await bus.heartbeat("w1", {"peers": 90, "rooms": 1, "cpu_pct": 45.0}, ttl_s=5)
    await bus.heartbeat("w2", {"peers": 40, "rooms": 20, "cpu_pct": 60.0}, ttl_s=5)
    await bus.heartbeat("hub-a", {"kind": "hub"}, ttl_s=5)  # hubs register too: never chosen
    assert await placement.place("s1") == ("w2", True)

    # w2 is near its core's capacity: the next room goes to w1 despite its peers
    await bus.heartbeat("w2", {"peers": 52, "rooms": 26, "cpu_pct": 86.0}, ttl_s=5)
    assert await placement.place("s2") == ("w1", True)
    assert await placement.place("s1") == ("w2", False)  # a placed room stays

    # every worker busy: the least loaded of them still takes it (a visit is not refused)
    await bus.heartbeat("w1", {"peers": 95, "rooms": 2, "cpu_pct": 92.0}, ttl_s=5)
    assert await placement.place("s3") == ("w2", True)
    await bus.close()
