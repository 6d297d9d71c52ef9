from __future__ import annotations

from gateway.media import hooks


async def test_one_publisher_one_subscriber_receive_decodable_media(
    client, room_opener, media_sources, worker, decode_errors
):
    video_cls, audio_cls = media_sources
    await room_opener("r1")
    alice = await client("r1", "alice")
    bob = await client("r1", "bob")
    await alice.offer(video_cls(), audio_cls())
    await bob.offer()
    await bob.send("peer.subscribe", publisher="alice")

    await bob.wait_for(
        lambda: bob.frames_from("alice", "video") >= 30 and bob.frames_from("alice", "audio") >= 30,
        within=15,
    )
    assert decode_errors.messages == []
    assert {r.sizes.pop() for r in bob.received.values() if r.kind == "video"} == {(320, 240)}
    assert {m["state"] for m in alice.of_type("peer.state")} == {"connected"}
    assert alice.of_type("peer.tracks")[-1]["kinds"] == ["audio", "video"]
    # the server only forwarded: its receivers never decode
    room = worker.rooms["r1"]
    for transceiver in room.peers["alice"].pc.getTransceivers():
        assert hooks.is_passthrough(transceiver.receiver)
