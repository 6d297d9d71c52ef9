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


async def test_viewers_fill_the_home_then_spread_to_relays_released_when_empty():
    bus = MemoryBus()
    placement = Placement(bus, spread_cpu_pct=70.0)
    for worker, cpu in (("w1", 20.0), ("w2", 30.0), ("w3", 40.0)):
        await bus.heartbeat(worker, {"peers": 0, "rooms": 0, "cpu_pct": cpu}, ttl_s=5)
    home, _ = await placement.place("t1")
    assert home == "w1"
    trainer = await placement.place_peer("t1", "trainer", home, publishing=True, restart=False)
    assert trainer.worker == "w1"
    assert not trainer.new_relay
    # one worker suffices: every viewer stays at home, no relay
    for n in range(5):
        spot = await placement.place_peer("t1", f"v{n}", home, publishing=False, restart=False)
        assert (spot.worker, spot.new_relay) == ("w1", False)
    assert await placement.relays("t1") == []

    # the home nears its capacity: the next viewer opens a relay on the least loaded worker
    await bus.heartbeat("w1", {"cpu_pct": 75.0}, ttl_s=5)
    spot = await placement.place_peer("t1", "v5", home, publishing=False, restart=False)
    assert (spot.worker, spot.new_relay) == ("w2", True)
    spot = await placement.place_peer("t1", "v6", home, publishing=False, restart=False)
    assert (spot.worker, spot.new_relay) == ("w2", False)  # the relay has room: it fills
    assert await placement.relays("t1") == ["w2"]
    # a second hub sees the same room state
    assert await Placement(bus).worker_of("t1", "v6") == "w2"

    # an offer on an existing connection stays where it is; a restart may move
    await bus.heartbeat("w2", {"cpu_pct": 90.0}, ttl_s=5)
    assert (
        await placement.place_peer("t1", "v6", home, publishing=False, restart=False)
    ).worker == "w2"
    moved = await placement.place_peer("t1", "v6", home, publishing=False, restart=True)
    assert (moved.worker, moved.new_relay, moved.previous) == ("w3", True, "w2")

    # relays are released when their last viewer leaves; the home never is
    assert await placement.peer_left("t1", "v5") == "w2"
    assert await placement.peer_left("t1", "v6") == "w3"
    assert await placement.peer_left("t1", "v0") is None
    assert await placement.relays("t1") == []
    await bus.close()


async def test_spread_zero_spreads_a_room_over_every_worker_and_dead_ones_are_forgotten():
    bus = MemoryBus()
    placement = Placement(bus, spread_cpu_pct=0.0)
    for worker in ("w1", "w2", "w3"):
        await bus.heartbeat(worker, {"cpu_pct": 5.0}, ttl_s=5)
    home, _ = await placement.place("t1")
    await placement.place_peer("t1", "trainer", home, publishing=True, restart=False)
    spots = [
        (await placement.place_peer("t1", f"v{n}", home, publishing=False, restart=False)).worker
        for n in range(6)
    ]
    assert sorted(spots) == ["w1", "w1", "w2", "w2", "w3", "w3"]
    assert len(await placement.relays("t1")) == 2
    dead = next(w for w in ("w2", "w3") if w != home)
    await placement.forget_workers("t1", {dead})
    assert dead not in (await placement.peers("t1")).values()
    assert dead not in await placement.relays("t1")
    await placement.forget_room("t1")
    assert await placement.peers("t1") == {}
    await bus.close()


async def test_a_viewer_promoted_on_a_relay_is_sent_home_and_one_at_home_stays():
    bus = MemoryBus()
    placement = Placement(bus, spread_cpu_pct=0.0)
    for worker in ("w1", "w2"):
        await bus.heartbeat(worker, {"cpu_pct": 5.0}, ttl_s=5)
    home, _ = await placement.place("t1")
    await placement.place_peer("t1", "trainer", home, publishing=True, restart=False)
    on_relay = await placement.place_peer("t1", "v1", home, publishing=False, restart=False)
    at_home = await placement.place_peer("t1", "v2", home, publishing=False, restart=False)
    assert (on_relay.worker != home, at_home.worker) == (True, home)
    # both promoted: their publishing offers on their existing connections
    moved = await placement.place_peer("t1", "v1", home, publishing=True, restart=False)
    assert moved.move_home
    assert await placement.worker_of("t1", "v1") == on_relay.worker  # nothing placed yet
    assert not (
        await placement.place_peer("t1", "v2", home, publishing=True, restart=False)
    ).move_home
    # its new connection goes home; the relay it leaves is empty
    again = await placement.place_peer("t1", "v1", home, publishing=True, restart=True)
    assert (again.worker, again.previous) == (home, on_relay.worker)
    assert await placement.release_if_empty("t1", on_relay.worker)
    await bus.close()
