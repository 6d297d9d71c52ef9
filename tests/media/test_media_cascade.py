"""Cascading: a publisher on one worker, viewers on another, relayed worker to worker.

Two media workers in this process on the memory bus (the three-process version on Redis, with
the hub placing viewers, is tests/integration/test_cascade.py). The relay worker pulls the
publisher from its origin over a WebRTC link (``relay.pull``) and forwards to its viewers
without transcoding; the viewers here decode every frame.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.media.worker import MediaWorker, worker_channel
from signaling.bus import MemoryBus
from signaling.bus_messages import RelayPull, RoomClose, RoomOpen
from tests.media.conftest import WORKER_ID, ListSink, open_room

RELAY_ID = "w-relay"


@pytest.fixture
async def relay_worker(loopback: None, bus: MemoryBus) -> AsyncIterator[MediaWorker]:
    """A second worker, recording nothing (relays never record: the origin does)."""
    media_worker = MediaWorker(bus, RELAY_ID, ice_loopback_only=True, stats_interval_s=0.5)
    await media_worker.start()
    yield media_worker
    await media_worker.close()


async def _pull(bus: MemoryBus, room: str, publisher: str) -> None:
    await bus.publish(
        worker_channel(RELAY_ID),
        RelayPull(session_id=room, publisher=publisher, origin=WORKER_ID),
    )


async def test_viewers_on_a_relay_worker_decode_the_publishers_media(
    client: Any,
    media_sources: Any,
    worker: MediaWorker,
    relay_worker: MediaWorker,
    bus: MemoryBus,
    sinks: list[ListSink],
    decode_errors: Any,
) -> None:
    video, audio = media_sources
    await open_room(bus, "r1", record=True)
    await bus.publish(worker_channel(RELAY_ID), RoomOpen(session_id="r1", codec="vp8"))
    alice = await client("r1", "alice")
    await alice.offer(video(), audio())
    await alice.wait_for(lambda: bool(alice.of_type("peer.tracks")))

    bob = await client("r1", "bob", worker_id=RELAY_ID)
    await bob.offer()
    await bob.send("peer.subscribe", publisher="alice")
    await _pull(bus, "r1", "alice")
    await bob.wait_for(
        lambda: bob.frames_from("alice", "video") >= 30 and bob.frames_from("alice", "audio") >= 20,
        within=15,
    )
    received = [r for r in bob.received.values() if r.kind == "video"]
    assert received[0].sizes == {(320, 240)}
    assert decode_errors.messages == []

    # the origin serves the relay as one viewer; the relay's room has alice as a publisher
    origin_room = worker.rooms["r1"]
    links = [p for p in origin_room.peers if p.startswith(f"relay:{RELAY_ID}:alice:")]
    assert len(links) == 1
    relay_room = relay_worker.rooms["r1"]
    assert relay_room.peers["alice"].link
    assert {f.kind for f in relay_room.peers["alice"].feeds.values()} == {"audio", "video"}
    # a second pull for the same publisher changes nothing
    await _pull(bus, "r1", "alice")

    # a late viewer on the relay starts on a keyframe the publisher sends on request (aiortc's
    # encoder sends one only then): the request went relay → origin → publisher
    plis_before = sum(f.plis_sent for f in origin_room.peers["alice"].feeds.values())
    carol = await client("r1", "carol", worker_id=RELAY_ID)
    await carol.offer()
    await carol.send("peer.subscribe", publisher="alice")
    await carol.wait_for(lambda: carol.frames_from("alice", "video") >= 10, within=15)
    assert sum(f.plis_sent for f in origin_room.peers["alice"].feeds.values()) > plis_before
    assert decode_errors.messages == []

    # only the origin recorded, and only alice's own tracks, once
    assert len(sinks) == 1
    assert {peer for peer, _kind, _packet, _at in sinks[0].packets} == {"alice"}

    # the relay closes its room: the origin closes its side of the link
    await bus.publish(worker_channel(RELAY_ID), RoomClose(session_id="r1"))
    await alice.wait_for(
        lambda: not any(p.startswith("relay:") for p in origin_room.peers), within=10
    )


async def test_an_offer_that_overtakes_the_relays_room_open_opens_the_room(
    client: Any, relay_worker: MediaWorker, bus: MemoryBus
) -> None:
    """Hubs publish on their own connections: one hub's viewer may reach a new relay before
    the room.open another hub sent; the offer carries what the relay needs to open it."""
    dave = await client("r2", "dave", worker_id=RELAY_ID)
    dave.pc.createDataChannel("control")
    offer = await dave.pc.createOffer()
    await dave.pc.setLocalDescription(offer)
    await dave.send(
        "peer.offer",
        sdp=dave.pc.localDescription.sdp,
        reply_to=dave.channel,
        open={
            "codec": "vp8",
            "record": False,
            "meta": {"kind": "training", "unit_id": None, "reply_to": dave.channel, "relay": True},
        },
    )
    await dave.wait_for(lambda: bool(dave.of_type("peer.answer")))
    assert relay_worker.rooms["r2"].sink is None
    assert not dave.of_type("peer.error")
