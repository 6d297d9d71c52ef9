"""Every hub → client event of ``/ws``, one pydantic model per type: the single definition.

Events carry a ``type`` and no ``id``. A connection sends a model as its JSON object
(:meth:`signaling.connection.Connection.send`); a room event travels between hubs inside the
``event`` room operation (:class:`signaling.bus_messages.RoomEvent`) as the same model.
Replies (``result``, ``error``) are the envelope's, built in :mod:`signaling.protocol`.

The objects events carry (a participant, a join snapshot, a receipt, an announcement, a queue
entry) are the JSON shapes of :mod:`signaling.views` and the records layer, typed here as
objects; docs/protocol.md describes them.

**A new event** is one model here, added to :data:`HubEvent`; docs/protocol.md, *Events*,
lists it (``tests/signaling/test_protocol_doc.py`` fails until it does).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)

#: a JSON object (a participant, a snapshot's part, a receipt…)
JsonObject = dict[str, Any]


class EventModel(BaseModel):
    """Base of every hub event: immutable, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: fields left out of the JSON when they are None (sent only in some cases)
    omitted_when_none: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> JsonObject:
        data: JsonObject = handler(self)
        for name in self.omitted_when_none:
            if data.get(name) is None:
                data.pop(name, None)
        return data


# ---- the visit queue -----------------------------------------------------------------------


class QueuePosition(EventModel):
    """The waiting terminal's place in its reception unit's queue."""

    type: Literal["queue.position"] = "queue.position"
    session: str
    position: int
    waiting: int


class QueueUpdate(EventModel):
    """The visits an official watching the queue may answer."""

    type: Literal["queue.update"] = "queue.update"
    unit_id: int
    visits: list[JsonObject]


# ---- a session and its participants --------------------------------------------------------


class SessionStateChanged(EventModel):
    """The session went live (``recording`` then says whether it is recorded) or was cancelled."""

    type: Literal["session.state"] = "session.state"
    omitted_when_none: ClassVar[tuple[str, ...]] = ("recording",)
    session: str
    state: str
    recording: bool | None = None


class ParticipantJoined(EventModel):
    """Someone joined (the participant object)."""

    type: Literal["participant.joined"] = "participant.joined"
    session: str
    participant: JsonObject


class ParticipantLeft(EventModel):
    """Someone left (the participant id) and why."""

    type: Literal["participant.left"] = "participant.left"
    session: str
    participant: str
    reason: str


class ParticipantUpdated(EventModel):
    """A participant's role changed (the participant object)."""

    type: Literal["participant.updated"] = "participant.updated"
    session: str
    participant: JsonObject


class ParticipantMuted(EventModel):
    """A moderator muted or unmuted a participant's audio or video."""

    type: Literal["participant.muted"] = "participant.muted"
    session: str
    participant: str
    kind: str
    muted: bool


class LobbyWaiting(EventModel):
    """Someone waits in the lobby (the participant object)."""

    type: Literal["lobby.waiting"] = "lobby.waiting"
    session: str
    participant: JsonObject


class LobbyLeft(EventModel):
    """Someone no longer waits in the lobby (the participant id)."""

    type: Literal["lobby.left"] = "lobby.left"
    session: str
    participant: str


class Admission(EventModel):
    """The person waiting was admitted (with the join snapshot) or refused."""

    type: Literal["admission"] = "admission"
    omitted_when_none: ClassVar[tuple[str, ...]] = (
        "session_info",
        "participant",
        "participants",
        "lobby",
        "recording",
        "ice_servers",
    )
    session: str
    state: Literal["admitted", "refused"]
    session_info: JsonObject | None = None
    participant: JsonObject | None = None
    participants: list[JsonObject] | None = None
    lobby: list[JsonObject] | None = None
    recording: bool | None = None
    ice_servers: list[JsonObject] | None = None


class SessionRemoved(EventModel):
    """This connection no longer holds its membership (removed, refused, revoked, superseded)."""

    type: Literal["session.removed"] = "session.removed"
    session: str
    reason: str


class SessionItem(EventModel):
    """The session was linked to a petition item."""

    type: Literal["session.item"] = "session.item"
    session: str
    item_id: str


class SessionEnded(EventModel):
    """The session ended, with its receipt."""

    type: Literal["session.ended"] = "session.ended"
    session: str
    reason: str
    receipt: JsonObject


# ---- training, chat, recording -------------------------------------------------------------


class HandRaised(EventModel):
    """A training's viewer raised or lowered a hand."""

    type: Literal["hand.raised"] = "hand.raised"
    session: str
    participant: str
    name: str
    unit_id: int | None
    raised: bool


class Attendance(EventModel):
    """A training's attendance: viewers and speakers present, per unit."""

    type: Literal["attendance"] = "attendance"
    session: str
    total: int
    units: dict[str, int]


class ChatMessage(EventModel):
    """A chat message."""

    type: Literal["chat.message"] = "chat.message"
    session: str
    participant: str
    name: str
    text: str
    at: float


class RecordingChanged(EventModel):
    """The session's recording was turned on or off."""

    type: Literal["recording"] = "recording"
    session: str
    active: bool


class AnnouncementPushed(EventModel):
    """An announcement for terminals (live; later ones get it in hello)."""

    type: Literal["announcement"] = "announcement"
    announcement: JsonObject


# ---- media ---------------------------------------------------------------------------------


class MediaAnswer(EventModel):
    """The worker's answer to the client's offer, with the mid → publisher map."""

    type: Literal["media.answer"] = "media.answer"
    session: str
    sdp: str
    tracks: list[JsonObject]


class MediaOffer(EventModel):
    """The worker's (re-)offer with new transceivers, and the mid → publisher map."""

    type: Literal["media.offer"] = "media.offer"
    session: str
    sdp: str
    tracks: list[JsonObject]


class MediaState(EventModel):
    """The client's peer connection on the worker changed state."""

    type: Literal["media.state"] = "media.state"
    session: str
    state: str


class MediaPublished(EventModel):
    """A participant publishes (its media kinds)."""

    type: Literal["media.published"] = "media.published"
    session: str
    participant: str
    kinds: list[str]


class MediaStats(EventModel):
    """A participant's media figures (for staff)."""

    type: Literal["media.stats"] = "media.stats"
    session: str
    participant: str
    stats: dict[str, int | float | None]


class MediaSpeaking(EventModel):
    """A publisher started or stopped speaking."""

    type: Literal["media.speaking"] = "media.speaking"
    session: str
    participant: str
    speaking: bool


class MediaLost(EventModel):
    """The room's media worker died: offer again from a new connection with ``restart``."""

    type: Literal["media.lost"] = "media.lost"
    session: str
    reason: str


# ---- the line ------------------------------------------------------------------------------


class Pong(EventModel):
    """The answer to a ``ping`` without an id."""

    type: Literal["pong"] = "pong"
    at: float


class ServerClosing(EventModel):
    """The hub shuts down cleanly."""

    type: Literal["server.closing"] = "server.closing"
    reason: str


#: every hub → client event, tagged by ``type``
HubEvent = Annotated[
    QueuePosition
    | QueueUpdate
    | SessionStateChanged
    | ParticipantJoined
    | ParticipantLeft
    | ParticipantUpdated
    | ParticipantMuted
    | LobbyWaiting
    | LobbyLeft
    | Admission
    | SessionRemoved
    | SessionItem
    | SessionEnded
    | HandRaised
    | Attendance
    | ChatMessage
    | RecordingChanged
    | AnnouncementPushed
    | MediaAnswer
    | MediaOffer
    | MediaState
    | MediaPublished
    | MediaStats
    | MediaSpeaking
    | MediaLost
    | Pong
    | ServerClosing,
    Field(discriminator="type"),
]
HUB_EVENTS: TypeAdapter[HubEvent] = TypeAdapter(HubEvent)
