"""Every client → hub message of ``/ws``, one pydantic model per type: the single definition.

A model holds the request's fields besides the envelope's ``id`` (its ``type`` is a literal
field, so the models also form one tagged union, :data:`ClientMessage`, and one JSON Schema).
:func:`signaling.protocol.parse` looks the model up by ``type`` and validates the rest; it
turns pydantic's errors into the ``bad_message`` texts docs/protocol.md documents. Handlers
(``signaling/commands/``) receive the validated model.

**A new client message type** is one model here (strict, extra fields refused, built from the
field types below so its errors read like every other's) and one handler in the command module
of its concern (``@command(TheModel)``); docs/protocol.md lists it
(``tests/signaling/test_protocol_doc.py`` fails until it does).

Field kinds, as docs/protocol.md names them: *id* (:data:`Id`), *str(n)*
(``Annotated[str, StringConstraints(max_length=n)]``), *int a..b*
(``Annotated[int, Field(ge=a, le=b)]``), *bool*, a literal choice; ``| None = None`` makes a
field optional (``null`` counts as absent).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError


class WireKind:
    """Annotation marker: how docs/protocol.md (and the error texts) name a string field."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"WireKind({self.name!r})"


def _alnum(value: str) -> str:
    if not value or not value.isalnum():
        raise PydanticCustomError("not_an_id", "not an id")
    return value


#: a session or participant id: 1-32 letters or digits
Id = Annotated[str, StringConstraints(max_length=32), AfterValidator(_alnum), WireKind("id")]
#: an SDP offer or answer, relayed untouched
Sdp = Annotated[str, StringConstraints(max_length=60_000), WireKind("sdp")]
#: text of at most 200 characters (the default length of a str field)
Text = Annotated[str, StringConstraints(max_length=200)]


class ClientModel(BaseModel):
    """Base of every client message: strict types, unknown fields refused, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    #: False for notifications a client may send without an ``id``
    needs_id: ClassVar[bool] = True


class IceCandidate(BaseModel):
    """An ICE candidate as ``RTCIceCandidate.toJSON()`` gives it (other keys are ignored)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    candidate: Annotated[str, StringConstraints(max_length=1000)]
    sdpMid: Annotated[str, StringConstraints(max_length=32)] | None = None  # noqa: N815  # the browser's name
    sdpMLineIndex: Annotated[int, Field(ge=0, le=255)] | None = None  # noqa: N815  # the browser's name


# ---- hello.py ------------------------------------------------------------------------------


class Hello(ClientModel):
    """Authenticate the connection; with ``resume``, take back its memberships."""

    type: Literal["hello"] = "hello"
    token: Annotated[str, StringConstraints(max_length=300)] | None = None
    resume: Annotated[str, StringConstraints(max_length=300)] | None = None
    lang: Annotated[str, StringConstraints(max_length=8)] | None = None


class Ping(ClientModel):
    """Keep the line alive (without an ``id``: answered by a ``pong`` event)."""

    type: Literal["ping"] = "ping"
    needs_id: ClassVar[bool] = False


# ---- visits.py -----------------------------------------------------------------------------


class VisitRequest(ClientModel):
    """A terminal asks for a video visit."""

    type: Literal["visit.request"] = "visit.request"
    category: Annotated[str, StringConstraints(max_length=64)]
    to_leader: bool | None = None


class VisitCancel(ClientModel):
    """Cancel a waiting visit."""

    type: Literal["visit.cancel"] = "visit.cancel"
    session: Id


class VisitRate(ClientModel):
    """Rate an ended visit."""

    type: Literal["visit.rate"] = "visit.rate"
    session: Id
    rating: Annotated[int, Field(ge=1, le=5)]


class QueueWatch(ClientModel):
    """Follow the visit queues."""

    type: Literal["queue.watch"] = "queue.watch"


class VisitAccept(ClientModel):
    """An officer takes a waiting visit."""

    type: Literal["visit.accept"] = "visit.accept"
    session: Id


# ---- sessions.py ---------------------------------------------------------------------------


class SessionCreate(ClientModel):
    """Create a call, conference, mediation, training or field session."""

    type: Literal["session.create"] = "session.create"
    kind: Literal["call", "conference", "mediation", "training", "field"]
    title: Text
    unit_id: Annotated[int, Field(ge=1, le=2**31)] | None = None
    lobby: bool | None = None
    record: bool | None = None


class SessionJoin(ClientModel):
    """Join a session."""

    type: Literal["session.join"] = "session.join"
    session: Id


class SessionLeave(ClientModel):
    """Leave a session."""

    type: Literal["session.leave"] = "session.leave"
    session: Id


class SessionEnd(ClientModel):
    """End a session (with its outcome)."""

    type: Literal["session.end"] = "session.end"
    session: Id
    outcome: Annotated[str, StringConstraints(max_length=64)] | None = None


class SessionLinkItem(ClientModel):
    """Link the session to a petition item."""

    type: Literal["session.link_item"] = "session.link_item"
    session: Id
    item_id: Annotated[str, StringConstraints(max_length=32)]


# ---- moderation.py and training.py: a moderator's act on one participant ------------------


class ParticipantAct(ClientModel):
    """Fields every act on a participant of a session has (``Context.moderated`` takes it)."""

    session: Id
    participant: Id


class LobbyAdmit(ParticipantAct):
    """Admit a participant from the lobby."""

    type: Literal["lobby.admit"] = "lobby.admit"


class LobbyRefuse(ParticipantAct):
    """Refuse a participant waiting in the lobby."""

    type: Literal["lobby.refuse"] = "lobby.refuse"


class ParticipantMute(ParticipantAct):
    """Mute or unmute a participant's audio or video."""

    type: Literal["participant.mute"] = "participant.mute"
    kind: Literal["audio", "video"]
    muted: bool


class ParticipantRemove(ParticipantAct):
    """Remove a participant from the session."""

    type: Literal["participant.remove"] = "participant.remove"


class TrainingPromote(ParticipantAct):
    """Let a training's viewer speak."""

    type: Literal["training.promote"] = "training.promote"


class TrainingDemote(ParticipantAct):
    """Make a speaker a viewer again."""

    type: Literal["training.demote"] = "training.demote"


class HandRaise(ClientModel):
    """Raise or lower a hand in a training."""

    type: Literal["hand.raise"] = "hand.raise"
    session: Id
    raised: bool


# ---- chat.py, recording.py -----------------------------------------------------------------


class ChatSend(ClientModel):
    """Send a chat message to the session."""

    type: Literal["chat.send"] = "chat.send"
    session: Id
    text: Annotated[str, StringConstraints(max_length=1000)]


class AnnouncementShown(ClientModel):
    """A kiosk put an announcement on its screen (信息发布送达)."""

    type: Literal["announcement.shown"] = "announcement.shown"
    announcement: Annotated[int, Field(ge=1, le=2**31)]


class RecordingSet(ClientModel):
    """Turn the session's recording on or off."""

    type: Literal["recording.set"] = "recording.set"
    session: Id
    active: bool


# ---- media.py ------------------------------------------------------------------------------


class MediaOffer(ClientModel):
    """A client's SDP offer for the room's worker."""

    type: Literal["media.offer"] = "media.offer"
    session: Id
    sdp: Sdp
    restart: bool | None = None


class MediaAnswer(ClientModel):
    """A client's SDP answer to a worker's re-offer."""

    type: Literal["media.answer"] = "media.answer"
    needs_id: ClassVar[bool] = False
    session: Id
    sdp: Sdp


class MediaCandidate(ClientModel):
    """A client's ICE candidate (absent or null: end of candidates)."""

    type: Literal["media.candidate"] = "media.candidate"
    needs_id: ClassVar[bool] = False
    session: Id
    candidate: IceCandidate | None = None


#: every client → hub message, tagged by ``type`` (JSON Schema: ``ClientMessageAdapter``)
ClientMessage = Annotated[
    Hello
    | Ping
    | VisitRequest
    | VisitCancel
    | VisitRate
    | QueueWatch
    | VisitAccept
    | SessionCreate
    | SessionJoin
    | SessionLeave
    | SessionEnd
    | SessionLinkItem
    | LobbyAdmit
    | LobbyRefuse
    | ParticipantMute
    | ParticipantRemove
    | TrainingPromote
    | TrainingDemote
    | HandRaise
    | ChatSend
    | AnnouncementShown
    | RecordingSet
    | MediaOffer
    | MediaAnswer
    | MediaCandidate,
    Field(discriminator="type"),
]


def message_type(model: type[ClientModel]) -> str:
    """The ``type`` a client message model stands for (its literal's one value)."""
    default = model.model_fields["type"].default
    if not isinstance(default, str):
        raise TypeError(f"{model.__name__} has no literal type")
    return default
