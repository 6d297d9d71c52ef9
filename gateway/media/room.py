"""A room on this worker: its peers, who subscribes to whom, mutes, and the recording sink."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gateway.media.forward import Feed, RoomSink
from gateway.media.peer import Peer

logger = logging.getLogger(__name__)

Message = dict[str, Any]


class Room:
    """Forwarding state of one room.

    Subscriptions and mutes are kept by participant id, so they may arrive before the
    participant's (or the publisher's) peer connection exists and apply once it does.

    Args:
        room_id: the room id.
        codec: ``"vp8"`` or ``"h264"``, forced on every video transceiver.
        sink: where recorded media goes, or ``None``.
        request_close: asks the worker to close a peer (from a callback that cannot await).
    """

    def __init__(
        self,
        room_id: str,
        codec: str,
        sink: RoomSink | None,
        request_close: Callable[[str, str], None],
    ) -> None:
        self.id = room_id
        self.codec = codec
        self.sink = sink
        self.peers: dict[str, Peer] = {}
        self.subscriptions: dict[str, set[str]] = {}  # subscriber -> publishers
        self.muted: dict[str, set[str]] = {}  # publisher -> muted kinds
        self.meta: dict[str, Any] = {}  # session kind, unit, hub reply channel (room.open)
        self._request_close = request_close

    @property
    def feeds(self) -> list[Feed]:
        """Every published track of the room."""
        return [
            feed
            for peer in self.peers.values()
            for feed in peer.feeds.values()
            if not feed.ended.is_set()
        ]

    def request_close(self, peer_id: str) -> None:
        """Ask the worker to close ``peer_id`` soon."""
        self._request_close(self.id, peer_id)

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, subscriber: str, publisher: str) -> None:
        """``subscriber`` wants ``publisher``'s media, now and whenever it publishes."""
        logger.debug("room %s: %s subscribes to %s", self.id, subscriber, publisher)
        self.subscriptions.setdefault(subscriber, set()).add(publisher)
        peer = self.peers.get(subscriber)
        if peer is not None:
            self.sync_subscriptions(peer)

    def unsubscribe(self, subscriber: str, publisher: str) -> None:
        """Stop forwarding ``publisher`` to ``subscriber``."""
        self.subscriptions.get(subscriber, set()).discard(publisher)
        peer = self.peers.get(subscriber)
        source = self.peers.get(publisher)
        if peer is not None and source is not None:
            for feed in source.feeds.values():
                peer.unforward(feed)

    def sync_subscriptions(self, peer: Peer) -> None:
        """Forward to ``peer`` every existing feed it subscribed to."""
        if peer.pc.remoteDescription is None:
            return  # its first offer is not answered yet; called again once it is
        for publisher in self.subscriptions.get(peer.id, ()):
            source = self.peers.get(publisher)
            if source is not None and publisher != peer.id:
                for feed in source.feeds.values():
                    if not feed.ended.is_set():
                        peer.forward(feed)

    def set_muted(self, publisher: str, kind: str, muted: bool) -> None:
        """Stop (or resume) forwarding ``publisher``'s ``kind`` media to everyone."""
        kinds = self.muted.setdefault(publisher, set())
        if muted:
            kinds.add(kind)
        else:
            kinds.discard(kind)
        source = self.peers.get(publisher)
        if source is not None:
            for feed in source.feeds.values():
                if feed.kind == kind:
                    feed.set_muted(muted)
                    if muted and kind == "audio":
                        source.speaking_changed(feed, False)

    def permit(self, publisher: str, may_publish: bool) -> None:
        """A participant's right to publish changed (a training viewer promoted or demoted)."""
        for kind in ("audio", "video"):
            self.set_muted(publisher, kind, not may_publish)

    def request_keyframe(self, publisher: str) -> None:
        """Ask ``publisher`` for a keyframe (the recorder starts files on keyframes)."""
        source = self.peers.get(publisher)
        if source is not None:
            for feed in source.feeds.values():
                if feed.kind == "video":
                    feed.request_keyframe()

    def set_sink(self, sink: RoomSink | None) -> RoomSink | None:
        """Start (or stop) recording every published track; returns the previous sink."""
        old, self.sink = self.sink, sink
        for peer in self.peers.values():
            if not peer.link:  # a relay link's feeds are recorded at their origin
                for feed in peer.feeds.values():
                    if not feed.ended.is_set():
                        feed.set_sink(sink)
        return old

    # ------------------------------------------------------------------ feed events

    def on_feed_added(self, feed: Feed) -> None:
        """A publisher's track appeared: apply its mute, forward it to its subscribers."""
        feed.set_muted(feed.kind in self.muted.get(feed.publisher, set()))
        for subscriber, publishers in self.subscriptions.items():
            peer = self.peers.get(subscriber)
            if (
                feed.publisher in publishers
                and peer is not None
                and subscriber != feed.publisher
                and peer.pc.remoteDescription is not None
            ):
                peer.forward(feed)

    def on_feed_started(self, feed: Feed) -> None:
        """The first frame of a track arrived: tell the hub which kinds the publisher sends."""
        source = self.peers.get(feed.publisher)
        if source is not None:
            kinds = sorted(
                {f.kind for f in source.feeds.values() if f.started and not f.ended.is_set()}
            )
            source.send("peer.tracks", kinds=kinds)

    def on_feed_ended(self, feed: Feed) -> None:
        """A track ended: its subscribers' transceivers go inactive (they get a new offer).

        The feed stays with its publisher until the peer closes, which awaits its tasks.
        """
        for peer in self.peers.values():
            peer.unforward(feed)

    # ------------------------------------------------------------------ lifecycle

    async def close_peer(self, peer_id: str) -> None:
        """Close one participant's connection and stop forwarding its media."""
        peer = self.peers.pop(peer_id, None)
        self.subscriptions.pop(peer_id, None)
        if peer is None:
            return
        published = bool(peer.feeds)
        await peer.close()  # ends its feeds: on_feed_ended updates the subscribers
        if published:
            peer.send("peer.tracks", kinds=[])

    async def close(self) -> None:
        """Close every peer, then the recording sink; idempotent."""
        for peer_id in list(self.peers):
            await self.close_peer(peer_id)
        if self.sink is not None:
            sink, self.sink = self.sink, None
            try:
                await sink.close()
            except Exception:
                logger.exception("room %s: recording sink failed to close", self.id)
