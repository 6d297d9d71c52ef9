"""Every message on the bus, one pydantic model per kind: the single definition of each shape.

The bus (:mod:`signaling.bus`) publishes only these models and consumers validate what they
receive with the adapter of their channel's union, so a hub, a media worker (``gateway.media``)
and the recorder read the same shapes. This module imports nothing of ours but the client
messages' :class:`~signaling.messages.IceCandidate` and the hub events a room operation
carries (import-linter keeps it that way), so the worker and the recorder may use it without
reaching the hub.

One key per thing, everywhere: ``session_id`` is the session (a worker's room is a session),
``peer`` the participant as the worker knows it, ``participant`` as the hub's rooms know it.

**A new bus message** is one model in the section of its channel below, added to that
channel's union (``RoomOp``, ``WorkerCommand``, ``WorkerReply``, ``RecordingEvent``, or a
new channel with its own union and adapter); docs/protocol.md, *Bus*, lists it
(``tests/signaling/test_protocol_doc.py`` fails until it does).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from signaling.events import HubEvent
from signaling.messages import IceCandidate

#: the channel every media worker publishes its recording events on
RECORDING_EVENTS = "recording.events"
#: the channel of announcements to terminals (every hub)
ANNOUNCE = "announce"
#: the channel of revoked terminal credentials (every hub)
TERMINAL_REVOKED = "terminal.revoked"


def room_channel(session_id: str) -> str:
    """The channel of a room's operations (every hub with members in it)."""
    return f"room.{session_id}"


def queue_channel(unit_id: int) -> str:
    """The channel saying that a reception unit's queue changed."""
    return f"queue.{unit_id}"


def hub_channel(hub_id: str) -> str:
    """The channel a hub receives its peers' worker replies on (a ``reply_to``)."""
    return f"hub.{hub_id}"


def worker_channel(worker_id: str) -> str:
    """The channel a media worker listens on."""
    return f"media.worker.{worker_id}"


def cascade_channel(worker_id: str) -> str:
    """The channel a relay worker hears its links' origins on (``WorkerReply`` messages)."""
    return f"media.cascade.{worker_id}"


class BusMessage(BaseModel):
    """Base of every bus message: immutable, unknown keys refused on both sides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The JSON object the bus carries."""
        return self.model_dump(mode="json")


# ---- room.<session>: room operations every hub with members in the room applies ------------


class RoomEvent(BusMessage):
    """Deliver a hub event to the room's members in ``audience``, on every hub."""

    op: Literal["event"] = "event"
    session_id: str
    event: HubEvent
    audience: str = "all"  # all | admitted | staff | speakers | participant:<id>


class MemberResumed(BusMessage):
    """A participant resumed on ``hub``: other hubs forget it (and close an older connection)."""

    op: Literal["resumed"] = "resumed"
    session_id: str
    participant: str
    hub: str


class MemberKicked(BusMessage):
    """A participant was refused, removed or its invite revoked: its hub forgets it."""

    op: Literal["kick"] = "kick"
    session_id: str
    participant: str
    reason: str


class MemberAdmitted(BusMessage):
    """A participant was admitted from the lobby: its hub sends it the snapshot."""

    op: Literal["admitted"] = "admitted"
    session_id: str
    participant: str


class RoleChanged(BusMessage):
    """A participant's role changed (training promote/demote): its hub permits its worker peer."""

    op: Literal["role"] = "role"
    session_id: str
    participant: str
    role: str


class Published(BusMessage):
    """A participant's tracks arrived: members who should receive it subscribe."""

    op: Literal["published"] = "published"
    session_id: str
    participant: str
    role: str


class Unpublished(BusMessage):
    """A demoted speaker: viewers stop receiving it."""

    op: Literal["unpublished"] = "unpublished"
    session_id: str
    participant: str


class RoomEnded(BusMessage):
    """The session ended or was cancelled: every hub forgets its members."""

    op: Literal["ended"] = "ended"
    session_id: str


class AttendanceChanged(BusMessage):
    """A training's viewer came or went: staff get the attendance (at most once a second)."""

    op: Literal["attendance"] = "attendance"
    session_id: str


RoomOp = Annotated[
    RoomEvent
    | MemberResumed
    | MemberKicked
    | MemberAdmitted
    | RoleChanged
    | Published
    | Unpublished
    | RoomEnded
    | AttendanceChanged,
    Field(discriminator="op"),
]
ROOM_OPS: TypeAdapter[RoomOp] = TypeAdapter(RoomOp)


# ---- queue.<unit>, announce, terminal.revoked: between hubs --------------------------------


class QueueChanged(BusMessage):
    """The visit queue of reception unit ``unit_id`` changed: hubs recompute positions."""

    type: Literal["queue.changed"] = "queue.changed"
    unit_id: int


class Announcement(BusMessage):
    """An announcement for the terminals of ``unit_id``'s subtree."""

    type: Literal["announcement"] = "announcement"
    id: int
    unit_id: int
    title: str
    body: str
    published_at: str
    expires_at: str


class TerminalRevoked(BusMessage):
    """A terminal's credential was revoked: every hub disconnects it."""

    type: Literal["terminal.revoked"] = "terminal.revoked"
    terminal_id: int


# ---- media.worker.<id>: hub → worker ------------------------------------------------------


class RoomMeta(BusMessage):
    """What a room's recording manifest needs to know of its session."""

    kind: str
    unit_id: int | None
    reply_to: str
    relay: bool = False  # the room on a relay worker (cascading): it records nothing


class RoomSettings(BusMessage):
    """The ``room.open`` fields of a relay, carried by a viewer's ``peer.offer`` (``open``)."""

    codec: str = "vp8"
    record: bool = False
    meta: RoomMeta | None = None


class RoomOpen(BusMessage):
    """Open the room (recorded or not) on this worker."""

    type: Literal["room.open"] = "room.open"
    session_id: str
    codec: str = "vp8"
    record: bool = False
    meta: RoomMeta | None = None


class RoomClose(BusMessage):
    """Close the room: its peers, and its recording (finalised)."""

    type: Literal["room.close"] = "room.close"
    session_id: str


class RoomRecord(BusMessage):
    """Start or stop recording an open room."""

    type: Literal["room.record"] = "room.record"
    session_id: str
    record: bool


class PeerInfo(BusMessage):
    """Who a peer is, for the recording's manifest."""

    name: str
    role: str
    unit_id: int | None


class PeerOffer(BusMessage):
    """A client's offer: the worker creates the peer (or renegotiates) and answers."""

    type: Literal["peer.offer"] = "peer.offer"
    session_id: str
    peer: str
    sdp: str
    reply_to: str
    may_publish: bool = True
    info: PeerInfo | None = None
    #: a relay's room.open (cascading), used if the room is not open here yet: another hub's
    #: room.open may reach a new relay after this offer
    open: RoomSettings | None = None


class PeerAnswer(BusMessage):
    """A client's answer to the worker's re-offer."""

    type: Literal["peer.answer"] = "peer.answer"
    session_id: str
    peer: str
    sdp: str


class PeerCandidate(BusMessage):
    """A client's ICE candidate (None: end of candidates)."""

    type: Literal["peer.candidate"] = "peer.candidate"
    session_id: str
    peer: str
    candidate: IceCandidate | None = None


class PeerSubscribe(BusMessage):
    """``peer`` receives ``publisher``'s media."""

    type: Literal["peer.subscribe"] = "peer.subscribe"
    session_id: str
    peer: str
    publisher: str


class PeerUnsubscribe(BusMessage):
    """``peer`` stops receiving ``publisher``'s media."""

    type: Literal["peer.unsubscribe"] = "peer.unsubscribe"
    session_id: str
    peer: str
    publisher: str


class PeerPermit(BusMessage):
    """Whether ``peer`` may publish (a training's speaker promoted or demoted)."""

    type: Literal["peer.permit"] = "peer.permit"
    session_id: str
    peer: str
    may_publish: bool


class PeerMute(BusMessage):
    """Stop or resume forwarding ``peer``'s audio or video."""

    type: Literal["peer.mute"] = "peer.mute"
    session_id: str
    peer: str
    kind: Literal["audio", "video"]
    muted: bool


class PeerClose(BusMessage):
    """Close ``peer``'s connection."""

    type: Literal["peer.close"] = "peer.close"
    session_id: str
    peer: str


class RelayPull(BusMessage):
    """Cascading: serve ``publisher`` on this (relay) worker from worker ``origin``.

    Idempotent; a pull from a different origin replaces the link (the publisher re-offered
    on another worker after its origin died). See ``gateway/media/cascade.py``.
    """

    type: Literal["relay.pull"] = "relay.pull"
    session_id: str
    publisher: str
    origin: str


WorkerCommand = Annotated[
    RoomOpen
    | RoomClose
    | RoomRecord
    | PeerOffer
    | PeerAnswer
    | PeerCandidate
    | PeerSubscribe
    | PeerUnsubscribe
    | PeerPermit
    | PeerMute
    | PeerClose
    | RelayPull,
    Field(discriminator="type"),
]
WORKER_COMMANDS: TypeAdapter[WorkerCommand] = TypeAdapter(WorkerCommand)


# ---- hub.<id> (the peer's reply_to): worker → hub -----------------------------------------


class TrackInfo(BusMessage):
    """Which publisher's media a receiving transceiver (``mid``) carries."""

    mid: str
    publisher: str
    kind: str
    source_mid: str


class WorkerAnswer(BusMessage):
    """The worker's answer to a client's offer, with its receiving transceivers."""

    type: Literal["peer.answer"] = "peer.answer"
    session_id: str
    peer: str
    sdp: str
    tracks: list[TrackInfo] = []


class WorkerOffer(BusMessage):
    """The worker's (re-)offer: new transceivers for new publishers."""

    type: Literal["peer.offer"] = "peer.offer"
    session_id: str
    peer: str
    sdp: str
    tracks: list[TrackInfo] = []


class PeerTracks(BusMessage):
    """The kinds of media a publisher's tracks carry (empty: it stopped publishing)."""

    type: Literal["peer.tracks"] = "peer.tracks"
    session_id: str
    peer: str
    kinds: list[str]


class PeerState(BusMessage):
    """The peer connection's state."""

    type: Literal["peer.state"] = "peer.state"
    session_id: str
    peer: str
    state: str  # connected | failed | closed (and aiortc's other states)


class PeerStats(BusMessage):
    """A peer's media figures: bitrate_kbps, fps, packets_lost, rtt_ms."""

    type: Literal["peer.stats"] = "peer.stats"
    session_id: str
    peer: str
    stats: dict[str, int | float | None]


class PeerSpeaking(BusMessage):
    """A publisher started or stopped speaking (from the audio levels its packets carry)."""

    type: Literal["peer.speaking"] = "peer.speaking"
    session_id: str
    peer: str
    speaking: bool


class PeerError(BusMessage):
    """A command for this peer failed."""

    type: Literal["peer.error"] = "peer.error"
    session_id: str | None
    peer: str | None
    code: str
    message: str


WorkerReply = Annotated[
    WorkerAnswer | WorkerOffer | PeerTracks | PeerState | PeerStats | PeerSpeaking | PeerError,
    Field(discriminator="type"),
]
WORKER_REPLIES: TypeAdapter[WorkerReply] = TypeAdapter(WorkerReply)


# ---- recording.events: the recorder (through its worker) → every hub ---------------------


class RecordingFileStarted(BusMessage):
    """A participant's file (segment) was opened."""

    type: Literal["recording.file_started"] = "recording.file_started"
    session_id: str
    run: str
    peer: str
    file: dict[str, Any]


class RecordingFileClosed(BusMessage):
    """A participant's file was finalised and hashed."""

    type: Literal["recording.file_closed"] = "recording.file_closed"
    session_id: str
    run: str
    peer: str
    file: dict[str, Any]


class RecordingClosed(BusMessage):
    """A run was finalised and chained (``recovered``: closed by recovery after a crash)."""

    type: Literal["recording.closed"] = "recording.closed"
    session_id: str
    run: str | None
    chain_index: int | None = None
    manifest: str | None = None
    manifest_sha256: str
    chain_hash: str
    previous_chain_hash: str | None = None
    files: list[dict[str, Any]] = []
    recovered: bool = False


class RecordingError(BusMessage):
    """A file of the run failed (``peer`` None: the run itself could not be created)."""

    type: Literal["recording.error"] = "recording.error"
    session_id: str
    run: str
    peer: str | None
    error: str


class RecordingDropping(BusMessage):
    """The recorder's queue is full: frames dropped so far, per peer and kind."""

    type: Literal["recording.dropping"] = "recording.dropping"
    session_id: str
    dropped: dict[str, dict[str, int]]


RecordingEvent = Annotated[
    RecordingFileStarted
    | RecordingFileClosed
    | RecordingClosed
    | RecordingError
    | RecordingDropping,
    Field(discriminator="type"),
]
RECORDING_EVENT_ADAPTER: TypeAdapter[RecordingEvent] = TypeAdapter(RecordingEvent)
