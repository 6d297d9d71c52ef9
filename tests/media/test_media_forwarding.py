from __future__ import annotations

import asyncio
import threading
import time
from fractions import Fraction

import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender

from gateway.media import hooks
from signaling.bus_messages import RoomClose


async def start_publisher(client, room_opener, media_sources, room="r1", codec="vp8"):
    video_cls, audio_cls = media_sources
    await room_opener(room, codec)
    alice = await client(room, "alice")
    await alice.offer(video_cls(), audio_cls())
    return alice


async def test_one_publisher_three_subscribers_receive_decodable_audio_and_video(
    client, room_opener, media_sources, worker, decode_errors
):
    alice = await start_publisher(client, room_opener, media_sources)
    viewers = [await client("r1", name) for name in ("bob", "carol", "dave")]
    for viewer in viewers:
        await viewer.offer()
        await viewer.send("peer.subscribe", publisher="alice")

    for viewer in viewers:
        await viewer.wait_for(
            lambda v=viewer: (
                v.frames_from("alice", "video") >= 30 and v.frames_from("alice", "audio") >= 40
            ),
            within=20,
        )
        video = [r for r in viewer.received.values() if r.kind == "video"]
        assert [r.sizes for r in video] == [{(320, 240)}]
    assert decode_errors.messages == []
    assert {m["state"] for m in alice.of_type("peer.state")} == {"connected"}
    assert alice.of_type("peer.tracks")[-1]["kinds"] == ["audio", "video"]
    # each viewer was told which publisher its transceivers carry
    assert sorted((t["publisher"], t["kind"]) for t in viewers[0].track_map.values()) == [
        ("alice", "audio"),
        ("alice", "video"),
    ]
    stats = viewers[0].of_type("peer.stats")
    assert stats
    assert set(stats[-1]["stats"]) == {"bitrate_kbps", "fps", "packets_lost", "rtt_ms"}
    assert max(m["stats"]["bitrate_kbps"] for m in stats) > 0


async def test_late_subscriber_decodes_a_frame_within_one_second(
    client, room_opener, media_sources, worker, decode_errors
):
    await start_publisher(client, room_opener, media_sources)
    early = await client("r1", "bob")
    await early.offer()
    await early.send("peer.subscribe", publisher="alice")
    await early.wait_for(lambda: early.frames_from("alice", "video") >= 10, within=15)
    # aiortc's encoder makes keyframes only on request (GOP 3000): only a PLI helps a newcomer
    await asyncio.sleep(1.0)

    late = await client("r1", "carol")
    await late.offer()
    await late.wait_for(lambda: late.of_type("peer.state"), within=10)
    subscribed_at = time.monotonic()
    await late.send("peer.subscribe", publisher="alice")
    await late.wait_for(lambda: late.frames_from("alice", "video") >= 1, within=5)
    video = next(r for r in late.received.values() if r.kind == "video")
    assert video.first_at is not None
    assert video.first_at - subscribed_at < 1.0
    assert decode_errors.messages == []


async def test_stalled_viewer_neither_slows_others_nor_grows(
    client, room_opener, media_sources, worker
):
    await start_publisher(client, room_opener, media_sources)
    stalled = await client("r1", "bob", read=False)
    healthy = await client("r1", "carol")
    for viewer in (stalled, healthy):
        await viewer.offer()
        await viewer.send("peer.subscribe", publisher="alice")
    await healthy.wait_for(lambda: healthy.frames_from("alice", "video") >= 5, within=15)
    start = healthy.frames_from("alice", "video")
    await asyncio.sleep(2.0)
    fps = (healthy.frames_from("alice", "video") - start) / 2.0
    assert fps >= 25
    room = worker.rooms["r1"]
    for peer in room.peers.values():
        for slot in peer.slots:
            assert slot.track.queued <= slot.track.maxsize


async def test_publisher_leaving_ends_forwarding_and_tells_subscribers(
    client, room_opener, media_sources, worker
):
    alice = await start_publisher(client, room_opener, media_sources)
    bob = await client("r1", "bob")
    await bob.offer()
    await bob.send("peer.subscribe", publisher="alice")
    await bob.wait_for(lambda: bob.frames_from("alice", "video") >= 5, within=15)
    offers = bob.offers_from_worker

    await alice.send("peer.close")
    await alice.wait_for(
        lambda: {"state": "closed"} in [{"state": m["state"]} for m in alice.of_type("peer.state")]
    )
    # bob gets a new offer whose map no longer names alice; his transceivers go inactive
    await bob.wait_for(lambda: bob.offers_from_worker > offers and not bob.track_map)
    await bob.wait_for(
        lambda: all(t.currentDirection == "inactive" for t in bob.pc.getTransceivers())
    )
    room = worker.rooms["r1"]
    assert "alice" not in room.peers
    assert room.feeds == []
    assert [s.feed for s in room.peers["bob"].slots] == [None, None]
    assert alice.of_type("peer.tracks")[-1]["kinds"] == []


async def test_resubscribing_reuses_the_inactive_transceivers(
    client, room_opener, media_sources, worker, decode_errors
):
    await start_publisher(client, room_opener, media_sources)
    bob = await client("r1", "bob")
    await bob.offer()
    await bob.send("peer.subscribe", publisher="alice")
    await bob.wait_for(lambda: bob.frames_from("alice", "video") >= 5, within=15)
    await bob.send("peer.unsubscribe", publisher="alice")
    await bob.wait_for(lambda: not bob.track_map)
    before = bob.frames_from_mids = {m: r.frames for m, r in bob.received.items()}
    await bob.send("peer.subscribe", publisher="alice")
    await bob.wait_for(lambda: len(bob.track_map) == 2)
    await bob.wait_for(
        lambda: all(r.frames > before[m] + 5 for m, r in bob.received.items()), within=5
    )
    assert len(bob.pc.getTransceivers()) == 2  # same m-lines, no growth
    assert decode_errors.messages == []


async def test_mute_stops_that_kind_only(client, room_opener, media_sources, worker):
    alice = await start_publisher(client, room_opener, media_sources)
    bob = await client("r1", "bob")
    await bob.offer()
    await bob.send("peer.subscribe", publisher="alice")
    await bob.wait_for(lambda: bob.frames_from("alice", "video") >= 5, within=15)

    await alice.send("peer.mute", kind="video", muted=True)
    await asyncio.sleep(0.5)
    video, audio = bob.frames_from("alice", "video"), bob.frames_from("alice", "audio")
    await asyncio.sleep(1.0)
    assert bob.frames_from("alice", "video") == video
    assert bob.frames_from("alice", "audio") > audio + 20

    await alice.send("peer.mute", kind="video", muted=False)
    await bob.wait_for(lambda: bob.frames_from("alice", "video") > video + 5, within=3)


async def test_server_neither_decodes_nor_encodes(
    client, room_opener, media_sources, worker, monkeypatch
):
    made: list[str] = []
    get_decoder, get_encoder = aiortc.rtcrtpreceiver.get_decoder, aiortc.rtcrtpsender.get_encoder

    def counting_decoder(codec):
        made.append("decoder " + codec.name)
        return get_decoder(codec)

    def counting_encoder(codec):
        made.append("encoder " + codec.name)
        return get_encoder(codec)

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", counting_decoder)
    monkeypatch.setattr(aiortc.rtcrtpsender, "get_encoder", counting_encoder)
    await start_publisher(client, room_opener, media_sources)
    viewer = await client("r1", "bob", decode=False)  # counts encoded frames, decodes nothing
    await viewer.offer()
    await viewer.send("peer.subscribe", publisher="alice")
    await viewer.wait_for(lambda: viewer.frames_from("alice", "video") >= 30, within=15)

    # the only codecs built in the whole process are the publishing client's two encoders
    assert sorted(made) == ["encoder VP8", "encoder opus"]
    server = worker.rooms["r1"].peers
    assert all(hooks.is_passthrough(t.receiver) for t in server["alice"].pc.getTransceivers())
    packed = [hooks.packetized_count(s.transceiver.sender) for s in server["bob"].slots]
    assert all(count is not None and count > 0 for count in packed)


async def test_h264_room_forwards_h264(client, room_opener, media_sources, worker, decode_errors):
    await start_publisher(client, room_opener, media_sources, room="r264", codec="h264")
    bob = await client("r264", "bob")
    await bob.offer()
    await bob.send("peer.subscribe", publisher="alice")
    await bob.wait_for(lambda: bob.frames_from("alice", "video") >= 15, within=15)
    sdp = bob.pc.remoteDescription.sdp
    assert "H264/90000" in sdp
    assert "VP8/90000" not in sdp
    assert decode_errors.messages == []


async def test_room_close_leaves_no_connections_tasks_or_threads(
    client, room_opener, media_sources, worker, bus
):
    alice = await start_publisher(client, room_opener, media_sources)
    bob = await client("r1", "bob")
    await bob.offer()
    await bob.send("peer.subscribe", publisher="alice")
    await bob.wait_for(lambda: bob.frames_from("alice", "video") >= 5, within=15)
    pcs = [peer.pc for peer in worker.rooms["r1"].peers.values()]

    await bus.publish(worker.channel, RoomClose(session_id="r1"))
    await bob.wait_for(lambda: any(m["state"] == "closed" for m in bob.of_type("peer.state")))
    await alice.wait_for(lambda: any(m["state"] == "closed" for m in alice.of_type("peer.state")))
    assert worker.rooms == {}
    assert [pc.connectionState for pc in pcs] == ["closed", "closed"]

    await alice.close()
    await bob.close()
    await worker.close()
    await asyncio.sleep(0.1)
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftovers == []
    assert [t.name for t in threading.enumerate() if t.name.endswith("-decoder")] == []


async def test_recorded_room_feeds_the_sink_every_track(
    client, room_opener, media_sources, worker, bus, sinks
):
    video_cls, audio_cls = media_sources
    await room_opener("rec", record=True)
    alice = await client("rec", "alice")
    await alice.offer(video_cls(), audio_cls())
    await alice.wait_for(
        lambda: alice.of_type("peer.tracks") and len(alice.of_type("peer.tracks")[-1]["kinds"]) == 2
    )
    await asyncio.sleep(1.0)
    await bus.publish(worker.channel, RoomClose(session_id="rec"))
    await alice.wait_for(lambda: any(m["state"] == "closed" for m in alice.of_type("peer.state")))

    [sink] = sinks
    assert (sink.room, sink.codec) == ("rec", "vp8")
    video = [p for peer, kind, p, _ in sink.packets if kind == "video"]
    audio = [p for peer, kind, p, _ in sink.packets if kind == "audio"]
    assert len(video) >= 20
    assert len(audio) >= 30
    assert video[0].is_keyframe
    assert video[0].pts == 0
    assert video[0].time_base == Fraction(1, 90000)
    assert audio[0].time_base == Fraction(1, 48000)
    assert sorted(sink.ended) == [("alice", "audio"), ("alice", "video")]
    assert sink.closed


async def test_messages_for_an_unknown_room_get_an_error(client):
    bob = await client("nowhere", "bob")
    await bob.offer()
    await bob.wait_for(lambda: bob.of_type("peer.error"))
    assert bob.of_type("peer.error")[0]["code"] == "no_room"
