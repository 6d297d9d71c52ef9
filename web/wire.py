"""The wire models of the foundation's REST routes (``web/routes/``): answers and bodies.

An answer model is built from the records' value (``Model.of(...)``) and dumped to JSON by
:func:`web.rest.reply`; a body model is read by :func:`web.rest.parse_body`. The models are
the OpenAPI document's schemas (``web.apidoc``). Item models live in ``web.items.wire``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, Field

from records import accounts, sessions
from records.enums import ParticipantRole, PrincipalKind, Role, SessionKind, SessionState
from records.lifecycle import ItemState
from web.rest import (
    DB_ID,
    LOOKUP_CODE,
    MAX_ID,
    Checked,
    Choice,
    Date,
    DateTime,
    Int,
    Refused,
    Request,
    Text,
    Wire,
)

#: the roles an invite may carry (the one definition: the route checks it, the document lists it)
INVITE_ROLES = (
    ParticipantRole.LAWYER,
    ParticipantRole.COUNSELLOR,
    ParticipantRole.SOCIAL_WORKER,
    ParticipantRole.OFFICIAL,
    ParticipantRole.PARTY,
    ParticipantRole.FIELD,
    ParticipantRole.VIEWER,
)

# ---- accounts and login ----------------------------------------------------------------------


class Account(Wire):
    """An official's account."""

    id: int
    username: str
    name: str
    unit_id: int
    roles: list[Role]

    @classmethod
    def of(cls, a: accounts.AccountInfo) -> Account:
        """The wire form of ``a``."""
        return cls(
            id=a.id,
            username=a.username,
            name=a.display_name,
            unit_id=a.unit_id,
            roles=sorted(a.roles, key=lambda r: r.value),
        )


class LoginBody(BaseModel):
    """``POST /api/login`` (checked by the handler: a refusal says which limits)."""

    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class LoginAnswer(Wire):
    """The signed-in account and the CSRF token for state-changing requests."""

    account: Account
    csrf_token: str


class Me(Wire):
    """Who the caller is."""

    kind: PrincipalKind
    id: str
    name: str
    unit_id: int | None
    unit_name: str | None
    roles: list[Role]
    session_id: str | None
    csrf_token: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Roles(Checked):
    """A non-empty list of roles."""

    def check(self, value: object, key: str) -> list[Role]:
        """The roles, or the refusal."""
        if not isinstance(value, list) or not value:
            raise Refused(f"field {key} must be a non-empty list")
        try:
            return [Role(r) for r in value]
        except ValueError as exc:
            raise Refused(f"unknown role in {value!r:.80}") from exc

    def schema(self) -> dict[str, Any]:
        """An array of role names."""
        return {"type": "array", "items": {"enum": [r.value for r in Role]}, "minItems": 1}


class AccountBody(Request):
    """``POST /api/accounts``."""

    unit_id: Annotated[int, Int(1, 2**31)]
    roles: Annotated[list[Role], Roles()]
    username: Annotated[str, Text(64)]
    name: Annotated[str, Text(200)]
    password: Annotated[str, Field(max_length=256)] = ""


# ---- org tree and leaders --------------------------------------------------------------------


class OrgUnit(Wire):
    """A unit of the tree; ``in_scope`` false for the units above the caller's."""

    id: int
    code: str
    name: str
    level: str
    parent_id: int | None
    active: bool
    in_scope: bool


class OrgUnits(Wire):
    """``GET /api/orgs``."""

    units: list[OrgUnit]


class Leader(Wire):
    """A leader and their unit."""

    id: int
    name: str
    unit_id: int
    unit_name: str


class Leaders(Wire):
    """``GET /api/leaders``."""

    leaders: list[Leader]


class UnitQuery(BaseModel):
    """``?unit_id=``."""

    unit_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None


# ---- sessions --------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class Session(Wire):
    """A session without its participants."""

    id: str
    kind: SessionKind
    state: SessionState
    unit_id: int
    reception_unit_id: int | None
    title: str
    category: str
    item_id: str | None
    recorded: bool
    outcome: str
    rating: int | None
    created_at: DateTime
    started_at: DateTime | None
    ended_at: DateTime | None
    end_reason: str

    @classmethod
    def fields_of(cls, s: sessions.SessionInfo) -> dict[str, Any]:
        """The fields of ``s`` every session form shares."""
        return {
            "id": s.id,
            "kind": s.kind,
            "state": s.state,
            "unit_id": s.unit_id,
            "reception_unit_id": s.reception_unit_id,
            "title": s.title,
            "category": s.category,
            "item_id": s.item_id,
            "recorded": s.recorded,
            "outcome": s.outcome,
            "rating": s.rating,
            "created_at": s.created_at,
            "started_at": s.started_at,
            "ended_at": s.ended_at,
            "end_reason": s.end_reason,
        }

    @classmethod
    def of(cls, s: sessions.SessionInfo) -> Session:
        """The wire form of ``s``."""
        return cls(**cls.fields_of(s))


class Sessions(Wire):
    """A list of sessions."""

    sessions: list[Session]


class Participant(Wire):
    """A participant of a session."""

    id: str
    name: str
    role: ParticipantRole
    unit_id: int | None
    admission: str
    joined_at: DateTime | None
    left_at: DateTime | None
    leave_reason: str

    @classmethod
    def of(cls, p: sessions.ParticipantInfo) -> Participant:
        """The wire form of ``p``."""
        return cls(
            id=p.id,
            name=p.display_name,
            role=p.role,
            unit_id=p.unit_id,
            admission=p.admission.value,
            joined_at=p.joined_at,
            left_at=p.left_at,
            leave_reason=p.leave_reason,
        )


class Recording(Wire):
    """A recorded file of a session."""

    id: int
    participant_id: str | None
    segment: int | None
    reason: str
    derived_from: int | None
    codec: str
    started_at: DateTime | None
    ended_at: DateTime | None
    frames: int | None
    bytes: int | None
    sha256: str | None
    state: str
    deleted: bool
    url: str

    @classmethod
    def of(cls, r: sessions.RecordingInfo, ids: dict[str, int]) -> Recording:
        """The wire form of ``r``; ``ids`` maps the session's file paths to recording ids."""
        return cls(
            id=r.id,
            participant_id=r.participant_id,
            segment=r.segment,
            reason=r.reason,
            derived_from=ids.get(r.derived_from) if r.derived_from else None,
            codec=r.codec,
            started_at=r.started_at,
            ended_at=r.ended_at,
            frames=r.frames,
            bytes=r.bytes,
            sha256=r.sha256,
            state=r.state,
            deleted=r.deleted,
            url=f"/api/recordings/{r.id}/file",
        )


class SessionDetail(Session):
    """One session with participants, events and recordings."""

    participants: list[Participant]
    events: list[dict[str, Any]]
    recordings: list[Recording]


class SnapshotParticipant(Wire):
    """A participant as an invitee's join snapshot shows it."""

    id: str
    name: str
    role: ParticipantRole
    unit_id: int | None
    admission: str
    joined_at: DateTime | None

    @classmethod
    def of(cls, q: sessions.ParticipantInfo) -> SnapshotParticipant:
        """The wire form of ``q``."""
        return cls(
            id=q.id,
            name=q.display_name,
            role=q.role,
            unit_id=q.unit_id,
            admission=q.admission.value,
            joined_at=q.joined_at,
        )


class InviteeSession(Wire):
    """The session as an admitted invitee's join snapshot shows it."""

    id: str
    kind: SessionKind
    state: SessionState
    unit_id: int
    title: str
    category: str
    recorded: bool
    created_at: DateTime
    participant: SnapshotParticipant
    participants: list[SnapshotParticipant]


class SessionsQuery(BaseModel):
    """Filters of ``GET /api/sessions``."""

    state: SessionState | None = None
    kind: SessionKind | None = None
    limit: Annotated[int, Field(ge=1, le=500)] | None = None


class ReceiptDue(Wire):
    """The item's next unit deadline."""

    on: Date
    what: str | None
    #: the date lies in a year without an official holiday notice (national rules)
    provisional: bool


class Receipt(Wire):
    """What the kiosk's receipt prints (labels are keys the page translates)."""

    session: str
    reference: str
    state: SessionState
    ended_at: DateTime | None
    category: str | None
    rating: int | None
    lookup_code: LOOKUP_CODE | None
    item_state: ItemState | None
    due: ReceiptDue | None


class Training(Wire):
    """A live or upcoming training the caller may join."""

    id: str
    reference: str
    title: str
    state: Annotated[SessionState, Choice((SessionState.LIVE, SessionState.WAITING))]
    unit_id: int
    unit_name: str | None
    created_at: DateTime
    started_at: DateTime | None


class Trainings(Wire):
    """``GET /api/trainings``."""

    trainings: list[Training]


class RecordingPath(BaseModel):
    """``{recording_id}``."""

    recording_id: DB_ID


# ---- invites and terminals -------------------------------------------------------------------


class InviteBody(Request):
    """``POST /api/sessions/{session_id}/invites``; ``ttl_s`` defaults to the settings'."""

    role: Annotated[ParticipantRole, Choice(INVITE_ROLES)]
    name: Annotated[str, Text(200)]
    ttl_s: Annotated[int, Int(60, 30 * 86400)] | None = None
    unit_id: Annotated[int, Int(1, 2**31)] | None = None


class Invite(Wire):
    """A new invite: its token is shown once, here."""

    id: str
    token: str
    url: str
    expires_at: DateTime
    role: Annotated[ParticipantRole, Choice(INVITE_ROLES)]


class InvitePath(BaseModel):
    """``{invite_id}``."""

    invite_id: Annotated[str, Field(max_length=64)]


class TerminalBody(Request):
    """``POST /api/terminals``."""

    unit_id: Annotated[int, Int(1, 2**31)]
    name: Annotated[str, Text(200)]


class Terminal(Wire):
    """A new terminal: its credential is shown once, here."""

    id: int
    name: str
    unit_id: int
    credential: str


class TerminalPath(BaseModel):
    """``{terminal_id}``."""

    terminal_id: DB_ID


# ---- audit -----------------------------------------------------------------------------------


class AuditEntry(Wire):
    """One audit log entry."""

    at: DateTime
    actor: str
    action: str
    object_type: str
    object_id: str
    remote: str
    outcome: str
    detail: dict[str, Any]


class AuditLog(Wire):
    """``GET /api/audit``."""

    entries: list[AuditEntry]


class AuditQuery(BaseModel):
    """Filters of ``GET /api/audit``."""

    limit: Annotated[int, Field(ge=1, le=1000)] | None = None
    action: Annotated[str, Field(max_length=64)] | None = None
    object_id: Annotated[str, Field(max_length=64)] | None = None
    actor: Annotated[str, Field(max_length=80)] | None = None
