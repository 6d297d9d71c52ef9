"""Sessions, participants, session events, recordings, announcements and the duty roster.

The database is written first (DESIGN.md decision 4): a session row exists before media
starts, joins and leaves are appended as they happen, and :func:`mark_interrupted` turns
sessions that a crash left live into ``interrupted`` at start, keeping everything written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import InvalidTransition, NotFound, RecordsError, ValidationError
from records import accounts, models
from records.base import new_id, utcnow
from records.enums import (
    AdmissionState,
    ParticipantRole,
    PrincipalKind,
    SessionKind,
    SessionState,
)
from records.orgs import OrgTree
from records.policy import SessionTarget
from records.principals import Principal

#: allowed session state changes
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.WAITING: frozenset(
        {SessionState.LIVE, SessionState.CANCELLED, SessionState.INTERRUPTED, SessionState.ENDED}
    ),
    SessionState.LIVE: frozenset({SessionState.ENDED, SessionState.INTERRUPTED}),
    SessionState.ENDED: frozenset(),
    SessionState.INTERRUPTED: frozenset(),
    SessionState.CANCELLED: frozenset(),
}


@dataclasses.dataclass(frozen=True, slots=True)
class ParticipantInfo:
    """One participant row."""

    id: str
    session_id: str
    principal_ref: str
    display_name: str
    role: ParticipantRole
    unit_id: int | None
    admission: AdmissionState
    joined_at: dt.datetime | None
    left_at: dt.datetime | None
    leave_reason: str
    publishing: bool = False
    hub_id: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session as the layers above see it."""

    id: str
    kind: SessionKind
    state: SessionState
    unit_id: int
    reception_unit_id: int | None
    title: str
    category: str
    convener_account_id: int | None
    terminal_id: int | None
    item_id: str | None
    routed_to_leader_id: int | None
    recorded: bool
    outcome: str
    rating: int | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    last_activity_at: dt.datetime | None
    end_reason: str
    participants: tuple[ParticipantInfo, ...] = ()

    def target(self) -> SessionTarget:
        """What the policy needs of this session."""
        return SessionTarget(
            id=self.id,
            kind=self.kind,
            unit_id=self.unit_id,
            reception_unit_id=self.reception_unit_id,
            terminal_id=self.terminal_id,
            convener_account_id=self.convener_account_id,
            routed_to_leader_id=self.routed_to_leader_id,
            participant_refs=frozenset(p.principal_ref for p in self.participants),
        )


def _participant(r: models.Participant) -> ParticipantInfo:
    return ParticipantInfo(
        r.id,
        r.session_id,
        f"{r.principal_kind.value}:{r.principal_id}",
        r.display_name,
        r.role,
        r.unit_id,
        r.admission,
        r.joined_at,
        r.left_at,
        r.leave_reason,
        r.publishing,
        r.hub_id,
    )


def _session(r: models.Session, parts: Iterable[models.Participant] = ()) -> SessionInfo:
    return SessionInfo(
        id=r.id,
        kind=r.kind,
        state=r.state,
        unit_id=r.unit_id,
        reception_unit_id=r.reception_unit_id,
        title=r.title,
        category=r.category,
        convener_account_id=r.convener_account_id,
        terminal_id=r.terminal_id,
        item_id=r.item_id,
        routed_to_leader_id=r.routed_to_leader_id,
        recorded=r.recorded,
        outcome=r.outcome,
        rating=r.rating,
        created_at=r.created_at,
        started_at=r.started_at,
        ended_at=r.ended_at,
        last_activity_at=r.last_activity_at,
        end_reason=r.end_reason,
        participants=tuple(_participant(p) for p in parts),
    )


async def create_session(
    db: AsyncSession,
    *,
    kind: SessionKind,
    unit_id: int,
    reception_unit_id: int | None = None,
    title: str = "",
    category: str = "",
    convener_account_id: int | None = None,
    terminal_id: int | None = None,
    routed_to_leader_id: int | None = None,
    recorded: bool = False,
) -> SessionInfo:
    """Write a new session in state ``waiting``; the caller commits at once."""
    if len(title) > 200 or len(category) > 64:
        raise ValidationError("title ≤ 200 and category ≤ 64 characters expected")
    now = utcnow()
    row = models.Session(
        kind=kind,
        state=SessionState.WAITING,
        unit_id=unit_id,
        reception_unit_id=reception_unit_id,
        title=title,
        category=category,
        convener_account_id=convener_account_id,
        terminal_id=terminal_id,
        routed_to_leader_id=routed_to_leader_id,
        recorded=recorded,
        created_at=now,
        last_activity_at=now,
    )
    db.add(row)
    try:
        await db.flush()
    except SQLAlchemyError as exc:
        raise RecordsError(f"creating a {kind.value} session failed: {exc}") from exc
    return _session(row)


async def get_session(db: AsyncSession, session_id: str) -> SessionInfo:
    """The session with its participants, or NotFound."""
    row = await db.get(models.Session, session_id)
    if row is None:
        raise NotFound(f"session {session_id!r} not found")
    parts = (
        await db.scalars(
            select(models.Participant)
            .where(models.Participant.session_id == session_id)
            .order_by(models.Participant.created_at, models.Participant.id)
        )
    ).all()
    return _session(row, parts)


async def get_session_for(db: AsyncSession, session_id: str, principal_ref: str) -> SessionInfo:
    """The session with only the participant rows of one principal, or NotFound.

    Its ``target()`` answers the policy for that principal exactly as the full session would
    (``participant_refs`` holds the principal's ref iff it has a row), without loading the
    thousands of rows of a large training.
    """
    row = await db.get(models.Session, session_id)
    if row is None:
        raise NotFound(f"session {session_id!r} not found")
    kind, _, principal_id = principal_ref.partition(":")
    try:
        principal_kind = PrincipalKind(kind)
    except ValueError:
        return _session(row)
    parts = (
        await db.scalars(
            select(models.Participant)
            .where(models.Participant.session_id == session_id)
            .where(models.Participant.principal_kind == principal_kind)
            .where(models.Participant.principal_id == principal_id)
            .order_by(models.Participant.created_at, models.Participant.id)
        )
    ).all()
    return _session(row, parts)


async def session_participants(
    db: AsyncSession,
    session_id: str,
    *,
    present_only: bool = False,
    exclude_roles: Iterable[ParticipantRole] = (),
    include_ids: Iterable[str] = (),
    limit: int | None = None,
) -> list[ParticipantInfo]:
    """Participants of a session, oldest first, optionally narrowed.

    ``present_only`` keeps rows without a leave time; ``exclude_roles`` drops roles, except
    the rows named in ``include_ids``; ``limit`` caps the count.
    """
    q = (
        select(models.Participant)
        .where(models.Participant.session_id == session_id)
        .order_by(models.Participant.created_at, models.Participant.id)
    )
    if present_only:
        q = q.where(models.Participant.left_at.is_(None))
    excluded = list(exclude_roles)
    if excluded:
        ids = list(include_ids)
        if ids:
            q = q.where(models.Participant.role.not_in(excluded) | models.Participant.id.in_(ids))
        else:
            q = q.where(models.Participant.role.not_in(excluded))
    if limit is not None:
        q = q.limit(limit)
    return [_participant(r) for r in (await db.scalars(q)).all()]


async def attendance_counts(
    db: AsyncSession, session_id: str, roles: Iterable[ParticipantRole]
) -> dict[int | None, int]:
    """Present, joined participants with one of ``roles`` per unit (training attendance)."""
    rows = (
        await db.execute(
            select(models.Participant.unit_id, func.count())
            .where(models.Participant.session_id == session_id)
            .where(models.Participant.role.in_(list(roles)))
            .where(models.Participant.left_at.is_(None))
            .where(models.Participant.joined_at.is_not(None))
            .group_by(models.Participant.unit_id)
        )
    ).all()
    return {unit_id: int(n) for unit_id, n in rows}


async def set_state(
    db: AsyncSession, session_id: str, state: SessionState, reason: str = ""
) -> SessionInfo:
    """Move a session to ``state`` if the state machine allows it."""
    row = await db.get(models.Session, session_id)
    if row is None:
        raise NotFound(f"session {session_id!r} not found")
    if state not in TRANSITIONS[row.state]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[row.state])) or "none"
        raise InvalidTransition(
            f"session {session_id} is {row.state.value}; cannot become {state.value}"
            f" (allowed: {allowed})"
        )
    now = utcnow()
    row.state = state
    row.last_activity_at = now
    if state is SessionState.LIVE:
        row.started_at = now
    if state in (SessionState.ENDED, SessionState.CANCELLED, SessionState.INTERRUPTED):
        row.ended_at = now
        row.end_reason = reason[:200]
        await _close_participants(db, session_id, now, f"session {state.value}")
    await db.flush()
    return _session(row)


async def _close_participants(
    db: AsyncSession, session_id: str, at: dt.datetime, reason: str
) -> None:
    """Close every open participant row of a session: present ones and the lobby's."""
    open_rows = (
        update(models.Participant)
        .where(models.Participant.session_id == session_id)
        .where(models.Participant.left_at.is_(None))
    )
    await db.execute(
        open_rows.where(models.Participant.joined_at.is_not(None)).values(
            left_at=at, leave_reason=reason
        )
    )
    # never admitted: the row says when the wait ended and why
    await db.execute(
        open_rows.where(models.Participant.joined_at.is_(None)).values(
            left_at=at, leave_reason="lobby closed"
        )
    )


async def touch_sessions(db: AsyncSession, session_ids: Iterable[str]) -> None:
    """Note signaling activity in live sessions (a crash then ends them no earlier)."""
    ids = list(session_ids)
    if ids:
        await db.execute(
            update(models.Session)
            .where(models.Session.id.in_(ids))
            .where(models.Session.state == SessionState.LIVE)
            .values(last_activity_at=utcnow())
        )


async def update_session(db: AsyncSession, session_id: str, **fields: Any) -> None:
    """Set item link, outcome, rating, recorded flag or title of a session."""
    allowed = {"item_id", "outcome", "rating", "recorded", "title", "category"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"cannot update session fields {sorted(unknown)}")
    row = await db.get(models.Session, session_id)
    if row is None:
        raise NotFound(f"session {session_id!r} not found")
    for k, v in fields.items():
        setattr(row, k, v)
    row.last_activity_at = utcnow()
    await db.flush()


async def add_participant(
    db: AsyncSession,
    session_id: str,
    principal: Principal,
    role: ParticipantRole,
    admission: AdmissionState,
    *,
    joined: bool,
    hub_id: str = "",
) -> ParticipantInfo:
    """Append a participant (joined now, or waiting in the lobby)."""
    now = utcnow()
    row = models.Participant(
        session_id=session_id,
        principal_kind=principal.kind,
        principal_id=principal.id,
        display_name=principal.name[:200],
        role=role,
        unit_id=principal.unit_id,
        admission=admission,
        joined_at=now if joined else None,
        hub_id=hub_id,
        created_at=now,
    )
    db.add(row)
    await db.execute(
        update(models.Session).where(models.Session.id == session_id).values(last_activity_at=now)
    )
    await db.flush()
    return _participant(row)


async def participant_joined(db: AsyncSession, participant_id: str) -> None:
    """Record the join time of a participant admitted from the lobby."""
    row = await db.get(models.Participant, participant_id)
    if row is None:
        raise NotFound(f"participant {participant_id!r} not found")
    if row.joined_at is None:
        row.joined_at = utcnow()
    await db.flush()


async def participant_left(db: AsyncSession, participant_id: str, reason: str) -> None:
    """Record the leave time of a participant (idempotent: the first leave wins)."""
    row = await db.get(models.Participant, participant_id)
    if row is None:
        raise NotFound(f"participant {participant_id!r} not found")
    now = utcnow()
    if row.left_at is None:
        row.left_at = now
        row.leave_reason = reason[:64]
    await db.execute(
        update(models.Session)
        .where(models.Session.id == row.session_id)
        .values(last_activity_at=now)
    )
    await db.flush()


async def set_participant(
    db: AsyncSession,
    participant_id: str,
    *,
    admission: AdmissionState | None = None,
    role: ParticipantRole | None = None,
    publishing: bool | None = None,
    hub_id: str | None = None,
) -> ParticipantInfo:
    """Change a participant's admission, role, publishing flag or hub."""
    row = await db.get(models.Participant, participant_id)
    if row is None:
        raise NotFound(f"participant {participant_id!r} not found")
    if admission is not None:
        row.admission = admission
    if role is not None:
        row.role = role
    if publishing is not None:
        row.publishing = publishing
    if hub_id is not None:
        row.hub_id = hub_id
    await db.flush()
    return _participant(row)


async def get_participant(db: AsyncSession, participant_id: str) -> ParticipantInfo:
    """One participant row or NotFound."""
    row = await db.get(models.Participant, participant_id)
    if row is None:
        raise NotFound(f"participant {participant_id!r} not found")
    return _participant(row)


async def orphaned_participants(
    db: AsyncSession, live_hubs: Iterable[str]
) -> list[ParticipantInfo]:
    """Present or waiting participants whose hub is not among ``live_hubs`` (it died)."""
    rows = (
        await db.scalars(
            select(models.Participant)
            .where(models.Participant.left_at.is_(None))
            .where(models.Participant.hub_id != "")
            .where(models.Participant.hub_id.not_in(list(live_hubs)))
        )
    ).all()
    return [_participant(r) for r in rows]


async def open_session_ids_of(db: AsyncSession, principal: Principal) -> list[str]:
    """Waiting or live sessions in which ``principal`` has a participant that has not left."""
    rows = await db.execute(
        select(models.Participant.session_id)
        .join(models.Session, models.Session.id == models.Participant.session_id)
        .where(models.Participant.principal_kind == principal.kind)
        .where(models.Participant.principal_id == principal.id)
        .where(models.Participant.left_at.is_(None))
        .where(models.Session.state.in_([SessionState.WAITING, SessionState.LIVE]))
        .distinct()
    )
    return [str(r[0]) for r in rows.all()]


async def waiting_visits(
    db: AsyncSession, reception_unit_ids: Iterable[int] | None
) -> list[SessionInfo]:
    """Waiting visits, oldest first (queue order), for the given reception units (None: all)."""
    q = (
        select(models.Session)
        .where(models.Session.kind == SessionKind.VISIT)
        .where(models.Session.state == SessionState.WAITING)
        .order_by(models.Session.created_at, models.Session.id)
    )
    if reception_unit_ids is not None:
        q = q.where(models.Session.reception_unit_id.in_(list(reception_unit_ids)))
    return [_session(r) for r in (await db.scalars(q)).all()]


async def open_visit_of_terminal(db: AsyncSession, terminal_id: int) -> SessionInfo | None:
    """The terminal's waiting or live visit, if any (a reload keeps its place)."""
    row = await db.scalar(
        select(models.Session)
        .where(models.Session.terminal_id == terminal_id)
        .where(models.Session.state.in_([SessionState.WAITING, SessionState.LIVE]))
        .order_by(models.Session.created_at.desc())
        .limit(1)
    )
    return None if row is None else _session(row)


async def accept_visit(db: AsyncSession, session_id: str) -> bool:
    """Atomically move a waiting visit to live; False if someone else took it first."""
    now = utcnow()
    result = await db.execute(
        update(models.Session)
        .where(models.Session.id == session_id)
        .where(models.Session.state == SessionState.WAITING)
        .values(state=SessionState.LIVE, started_at=now, last_activity_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def log_event(
    db: AsyncSession,
    session_id: str,
    event: str,
    *,
    actor: str = "",
    participant_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append one session event (append-only)."""
    db.add(
        models.SessionEvent(
            session_id=session_id,
            actor=actor[:80],
            event=event[:40],
            participant_id=participant_id,
            data=data or {},
        )
    )
    await db.flush()


async def session_events(db: AsyncSession, session_id: str) -> list[dict[str, Any]]:
    """The events of a session in order."""
    rows = (
        await db.scalars(
            select(models.SessionEvent)
            .where(models.SessionEvent.session_id == session_id)
            .order_by(models.SessionEvent.id)
        )
    ).all()
    return [
        {
            "at": r.at.isoformat(),
            "actor": r.actor,
            "event": r.event,
            "participant": r.participant_id,
            "data": r.data,
        }
        for r in rows
    ]


async def mark_interrupted(db: AsyncSession) -> list[str]:
    """At start: live sessions become interrupted at their last activity; returns their ids.

    Waiting visits stay waiting: the queue survives a restart. Open participant rows of the
    interrupted sessions are closed at the session's last activity time.
    """
    rows = (
        await db.scalars(select(models.Session).where(models.Session.state == SessionState.LIVE))
    ).all()
    ids = []
    for row in rows:
        at = row.last_activity_at or row.started_at or row.created_at
        row.state = SessionState.INTERRUPTED
        row.ended_at = at
        row.end_reason = "hub restarted while live"
        await _close_participants(db, row.id, at, "interrupted")
        ids.append(row.id)
    await db.flush()
    return ids


async def list_sessions(
    db: AsyncSession,
    *,
    unit_ids: Iterable[int] | None = None,
    states: Iterable[SessionState] | None = None,
    kinds: Iterable[SessionKind] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 100,
) -> Sequence[SessionInfo]:
    """Sessions filtered by convening or reception unit, state, kind and creation time."""
    q = select(models.Session).order_by(models.Session.created_at.desc()).limit(min(limit, 1000))
    if unit_ids is not None:
        ids = list(unit_ids)
        q = q.where(models.Session.unit_id.in_(ids) | models.Session.reception_unit_id.in_(ids))
    if states is not None:
        q = q.where(models.Session.state.in_(list(states)))
    if kinds is not None:
        q = q.where(models.Session.kind.in_(list(kinds)))
    if since is not None:
        q = q.where(models.Session.created_at >= since)
    if until is not None:
        q = q.where(models.Session.created_at < until)
    return [_session(r) for r in (await db.scalars(q)).all()]


# ---- recordings ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class RecordingInfo:
    """One recorded file."""

    id: int
    session_id: str
    participant_id: str | None
    path: str
    codec: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    frames: int
    bytes: int
    sha256: str
    state: str
    deleted: bool
    segment: int | None
    reason: str
    derived_from: str | None


def _recording(r: models.Recording) -> RecordingInfo:
    return RecordingInfo(
        r.id,
        r.session_id,
        r.participant_id,
        r.path,
        r.codec,
        r.started_at,
        r.ended_at,
        r.frames,
        r.bytes,
        r.sha256,
        r.state,
        r.deleted_at is not None,
        r.segment,
        r.reason,
        r.derived_from,
    )


async def upsert_recording(db: AsyncSession, session_id: str, path: str, **fields: Any) -> None:
    """Create or update the row of a recorded file (by path)."""
    row = await db.scalar(select(models.Recording).where(models.Recording.path == path))
    if row is None:
        row = models.Recording(session_id=session_id, path=path)
        db.add(row)
    for k, v in fields.items():
        if k not in {
            "participant_id",
            "codec",
            "started_at",
            "ended_at",
            "frames",
            "bytes",
            "sha256",
            "state",
            "deleted_at",
            "segment",
            "reason",
            "derived_from",
        }:
            raise ValidationError(f"unknown recording field {k!r}")
        setattr(row, k, v)
    await db.flush()


async def recordings_of(db: AsyncSession, session_id: str) -> list[RecordingInfo]:
    """The recorded files of a session."""
    rows = (
        await db.scalars(
            select(models.Recording)
            .where(models.Recording.session_id == session_id)
            .order_by(models.Recording.id)
        )
    ).all()
    return [_recording(r) for r in rows]


async def get_recording(db: AsyncSession, recording_id: int) -> RecordingInfo:
    """One recording row or NotFound."""
    row = await db.get(models.Recording, recording_id)
    if row is None:
        raise NotFound(f"recording {recording_id!r} not found")
    return _recording(row)


# ---- announcements -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class AnnouncementInfo:
    """An announcement (信息发布)."""

    id: int
    unit_id: int
    title: str
    body: str
    published_at: dt.datetime
    expires_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        """The form the REST API, the bus and the terminals carry."""
        return {
            "id": self.id,
            "unit_id": self.unit_id,
            "title": self.title,
            "body": self.body,
            "published_at": self.published_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


def _announcement(r: models.Announcement) -> AnnouncementInfo:
    return AnnouncementInfo(r.id, r.unit_id, r.title, r.body, r.published_at, r.expires_at)


async def create_announcement(
    db: AsyncSession, unit_id: int, title: str, body: str, created_by: int, expires_at: dt.datetime
) -> AnnouncementInfo:
    """Publish an announcement to the subtree of ``unit_id``."""
    if not title.strip() or len(title) > 200:
        raise ValidationError(f"announcement title {title[:40]!r}: 1-200 characters expected")
    if not body.strip() or len(body) > 5000:
        raise ValidationError("announcement body: 1-5000 characters expected")
    if expires_at <= utcnow():
        raise ValidationError(f"announcement expiry {expires_at.isoformat()} is in the past")
    row = models.Announcement(
        unit_id=unit_id,
        title=title.strip(),
        body=body.strip(),
        created_by=created_by,
        expires_at=expires_at,
    )
    db.add(row)
    await db.flush()
    return _announcement(row)


async def active_announcements(db: AsyncSession, unit_ids: Iterable[int]) -> list[AnnouncementInfo]:
    """Unexpired announcements published by any of ``unit_ids`` (a terminal's ancestors)."""
    now = utcnow()
    rows = (
        await db.scalars(
            select(models.Announcement)
            .where(models.Announcement.unit_id.in_(list(unit_ids)))
            .where(models.Announcement.expires_at > now)
            .where(models.Announcement.withdrawn_at.is_(None))
            .order_by(models.Announcement.published_at.desc())
            .limit(20)
        )
    ).all()
    return [_announcement(r) for r in rows]


@dataclasses.dataclass(frozen=True, slots=True)
class AnnouncementRecord:
    """An announcement as its list shows it: who published it and whether it was withdrawn."""

    info: AnnouncementInfo
    author_id: int
    author_name: str
    withdrawn_at: dt.datetime | None


async def list_announcements(
    db: AsyncSession, unit_ids: Iterable[int] | None, *, limit: int = 100
) -> list[AnnouncementRecord]:
    """Announcements published to ``unit_ids`` (every unit: ``None``), newest first."""
    q = (
        select(models.Announcement, models.Account.display_name)
        .join(models.Account, models.Account.id == models.Announcement.created_by)
        .order_by(models.Announcement.published_at.desc(), models.Announcement.id.desc())
        .limit(limit)
    )
    if unit_ids is not None:
        q = q.where(models.Announcement.unit_id.in_(list(unit_ids)))
    rows = (await db.execute(q)).all()
    return [
        AnnouncementRecord(_announcement(r), r.created_by, name, r.withdrawn_at) for r, name in rows
    ]


async def get_announcement(db: AsyncSession, announcement_id: int) -> AnnouncementInfo:
    """The announcement, or NotFound."""
    row = await db.get(models.Announcement, announcement_id)
    if row is None:
        raise NotFound(f"announcement {announcement_id!r} not found")
    return _announcement(row)


async def withdraw_announcement(db: AsyncSession, announcement_id: int) -> AnnouncementRecord:
    """Withdraw an announcement (terminals stop showing it); withdrawing again changes nothing."""
    row = await db.get(models.Announcement, announcement_id)
    if row is None:
        raise NotFound(f"announcement {announcement_id!r} not found")
    if row.withdrawn_at is None:
        row.withdrawn_at = utcnow()
        await db.flush()
    author = await db.get(models.Account, row.created_by)
    return AnnouncementRecord(
        _announcement(row), row.created_by, author.display_name if author else "", row.withdrawn_at
    )


# ---- duty roster -----------------------------------------------------------------------------


async def set_duty(db: AsyncSession, day: dt.date, unit_id: int, account_id: int) -> None:
    """Set the leader on duty of ``unit_id`` for ``day``."""
    row = await db.get(models.DutyRoster, (day, unit_id))
    if row is None:
        db.add(models.DutyRoster(day=day, unit_id=unit_id, account_id=account_id))
    else:
        row.account_id = account_id
    await db.flush()


async def leader_on_duty(db: AsyncSession, day: dt.date, unit_id: int) -> int | None:
    """The account id of the leader on duty, if any."""
    row = await db.get(models.DutyRoster, (day, unit_id))
    return None if row is None else row.account_id


async def duty_between(
    db: AsyncSession, start: dt.date, end: dt.date, unit_ids: Iterable[int]
) -> dict[tuple[dt.date, int], int]:
    """The roster from ``start`` to ``end`` (exclusive): (day, unit id) → the leader's account."""
    rows = await db.scalars(
        select(models.DutyRoster).where(
            models.DutyRoster.day >= start,
            models.DutyRoster.day < end,
            models.DutyRoster.unit_id.in_(list(unit_ids)),
        )
    )
    return {(r.day, r.unit_id): r.account_id for r in rows}


# ---- session statistics ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class SessionStatistics:
    """What the report says about sessions in a period (DOMAIN.md "Statistics").

    Attributes:
        by_kind: sessions held (went live) per kind.
        by_kind_and_level: the same per kind and level of the convening unit ("visit:community").
        visit_batches: video visits received (批次): visits that went live.
        visit_person_times: residents received (人次): resident-side participants who joined.
        leader_receptions: visits routed to the leader on duty that went live.
        training_attendance: distinct viewers per unit id across training sessions.
        visit_ratings: count per rating 1..5 given at the terminals.
    """

    by_kind: dict[str, int]
    by_kind_and_level: dict[str, int]
    visit_batches: int
    visit_person_times: int
    leader_receptions: int
    training_attendance: dict[str, int]
    visit_ratings: dict[str, int]


async def session_statistics(
    db: AsyncSession,
    *,
    start: dt.datetime,
    end: dt.datetime,
    unit_ids: Iterable[int] | None,
    as_of: dt.datetime | None = None,
) -> SessionStatistics:
    """Aggregate sessions that went live in ``[start, end)`` for the given units (None: all).

    ``as_of`` (default: ``end``, or now while the period runs) reads the records as they
    stood then, like the annual report: sessions that went live and participants who joined
    before it. A rating has no time of its own (it is given at the end of the visit); it
    counts with its session.
    """
    if as_of is None:
        as_of = min(dt.datetime.now(dt.UTC), end)
    S, U, Pt = models.Session, models.OrgUnit, models.Participant
    held = (S.started_at >= start) & (S.started_at < min(end, as_of))
    if unit_ids is not None:
        ids = list(unit_ids)
        held = held & (S.unit_id.in_(ids) | S.reception_unit_id.in_(ids))
    by_kind: dict[str, int] = {}
    by_level: dict[str, int] = {}
    rows = await db.execute(
        select(S.kind, U.level, func.count())
        .join(U, U.id == S.unit_id)
        .where(held)
        .group_by(S.kind, U.level)
    )
    for kind, level, n in rows.all():
        by_kind[kind.value] = by_kind.get(kind.value, 0) + int(n)
        by_level[f"{kind.value}:{level.value}"] = int(n)
    is_visit = held & (S.kind == SessionKind.VISIT)
    person_times = await db.scalar(
        select(func.count())
        .select_from(Pt)
        .join(S, S.id == Pt.session_id)
        .where(is_visit & (Pt.role == ParticipantRole.RESIDENT) & (Pt.joined_at < as_of))
    )
    leader = await db.scalar(
        select(func.count()).select_from(S).where(is_visit & S.routed_to_leader_id.is_not(None))
    )
    viewers = (
        select(Pt.unit_id, Pt.principal_kind, Pt.principal_id)
        .join(S, S.id == Pt.session_id)
        .where(held & (S.kind == SessionKind.TRAINING))
        .where(Pt.role.in_([ParticipantRole.VIEWER, ParticipantRole.SPEAKER]))
        .where(Pt.joined_at < as_of)
        .distinct()
        .subquery()
    )
    attendance_rows = await db.execute(
        select(viewers.c.unit_id, func.count()).group_by(viewers.c.unit_id)
    )
    ratings = await db.execute(
        select(S.rating, func.count()).where(is_visit & S.rating.is_not(None)).group_by(S.rating)
    )
    return SessionStatistics(
        by_kind=by_kind,
        by_kind_and_level=by_level,
        visit_batches=by_kind.get(SessionKind.VISIT.value, 0),
        visit_person_times=int(person_times or 0),
        leader_receptions=int(leader or 0),
        training_attendance={str(u or 0): int(n) for u, n in attendance_rows.all()},
        visit_ratings={str(r): int(n) for r, n in ratings.all()},
    )


# ---- the hub's hot paths: hello and join in one transaction each -----------------------------
#
# These run through ``Store.run`` over a synchronous Core connection: prebuilt statements with
# bound parameters (no ORM identity map or unit of work, no statement construction per call),
# and one transaction for everything a hello or a join reads and writes. The ORM functions
# above stay as they are for everything else.

_S = cast(Table, models.Session.__table__)
_PT = cast(Table, models.Participant.__table__)
_EV = cast(Table, models.SessionEvent.__table__)
_AN = cast(Table, models.Announcement.__table__)
_TM = cast(Table, models.Terminal.__table__)

_SESSION_BY_ID = select(_S).where(_S.c.id == bindparam("sid"))
# a join reads the joiner's own rows and the present participants it may see, two index
# searches: (session, principal) and (session, role, left_at). One query with an OR of the two
# scanned every row of the session, thousands in a training (measured: join p99 grew with N)
_MY_ROWS = (
    select(_PT)
    .where(
        (_PT.c.session_id == bindparam("sid"))
        & (_PT.c.principal_kind == bindparam("pkind"))
        & (_PT.c.principal_id == bindparam("pid"))
    )
    .order_by(_PT.c.created_at, _PT.c.id)
)
_PRESENT_ROWS = select(_PT).where(
    (_PT.c.session_id == bindparam("sid"))
    & _PT.c.role.in_(bindparam("visible", expanding=True))
    & _PT.c.left_at.is_(None)
)
_PARTICIPANT_BY_ID = select(_PT).where(_PT.c.id == bindparam("pid"))
_MARK_LEFT = (
    update(_PT)
    .where(_PT.c.id == bindparam("pid"))
    .where(_PT.c.left_at.is_(None))
    .values(left_at=bindparam("now"), leave_reason=bindparam("reason"), publishing=False)
)
# someone who joined is still there: one index search per role, stopping at the first row
_ANYONE_PRESENT = (
    select(_PT.c.id)
    .where(_PT.c.session_id == bindparam("sid"))
    .where(_PT.c.role.in_(list(ParticipantRole)))
    .where(_PT.c.left_at.is_(None))
    .where(_PT.c.joined_at.is_not(None))
    .limit(1)
)
_INSERT_PARTICIPANT = insert(_PT)
_INSERT_EVENT = insert(_EV)
_TOUCH_SESSION = (
    update(_S).where(_S.c.id == bindparam("sid")).values(last_activity_at=bindparam("now"))
)
_START_SESSION = (
    update(_S)
    .where(_S.c.id == bindparam("sid"))
    .where(_S.c.state == SessionState.WAITING)
    .values(state=SessionState.LIVE, started_at=bindparam("now"), last_activity_at=bindparam("now"))
)
_TERMINAL_BY_HASH = select(_TM.c.id, _TM.c.name, _TM.c.unit_id, _TM.c.revoked_at).where(
    _TM.c.credential_hash == bindparam("hash")
)
_ACTIVE_ANNOUNCEMENTS = (
    select(_AN.c.id, _AN.c.unit_id, _AN.c.title, _AN.c.body, _AN.c.published_at, _AN.c.expires_at)
    .where(_AN.c.unit_id.in_(bindparam("units", expanding=True)))
    .where(_AN.c.expires_at > bindparam("now"))
    .where(_AN.c.withdrawn_at.is_(None))
    .order_by(_AN.c.published_at.desc())
    .limit(20)
)
_OPEN_VISIT_OF_TERMINAL = (
    select(_S)
    .where(_S.c.terminal_id == bindparam("tid"))
    .where(_S.c.state.in_([SessionState.WAITING, SessionState.LIVE]))
    .order_by(_S.c.created_at.desc())
    .limit(1)
)


def _participant_row(m: Any) -> ParticipantInfo:
    return ParticipantInfo(
        m["id"],
        m["session_id"],
        f"{m['principal_kind'].value}:{m['principal_id']}",
        m["display_name"],
        m["role"],
        m["unit_id"],
        m["admission"],
        m["joined_at"],
        m["left_at"],
        m["leave_reason"],
        m["publishing"],
        m["hub_id"],
    )


def _session_row(m: Any, parts: tuple[ParticipantInfo, ...] = ()) -> SessionInfo:
    return SessionInfo(
        id=m["id"],
        kind=m["kind"],
        state=m["state"],
        unit_id=m["unit_id"],
        reception_unit_id=m["reception_unit_id"],
        title=m["title"],
        category=m["category"],
        convener_account_id=m["convener_account_id"],
        terminal_id=m["terminal_id"],
        item_id=m["item_id"],
        routed_to_leader_id=m["routed_to_leader_id"],
        recorded=m["recorded"],
        outcome=m["outcome"],
        rating=m["rating"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        last_activity_at=m["last_activity_at"],
        end_reason=m["end_reason"],
        participants=parts,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class TerminalHello:
    """What a community terminal's hello needs, read in one transaction.

    Attributes:
        terminal: the terminal of the credential; None if unknown or revoked.
        announcements: unexpired announcements of its unit and the units above it.
        visit: its waiting or live visit, if any (a reload keeps its place).
    """

    terminal: accounts.TerminalInfo | None
    announcements: list[AnnouncementInfo]
    visit: SessionInfo | None


def terminal_hello(conn: Connection, credential: str, tree: OrgTree) -> TerminalHello:
    """Resolve a device credential and read the terminal's announcements and open visit.

    One transaction, three indexed reads; the same answers as :func:`accounts.resolve_terminal`,
    :func:`active_announcements` (over ``tree.ancestors`` of its unit) and
    :func:`open_visit_of_terminal`. Runs through ``Store.run``.
    """
    if not credential.startswith(accounts.TERMINAL_PREFIX) or len(credential) > 200:
        return TerminalHello(None, [], None)
    row = conn.execute(_TERMINAL_BY_HASH, {"hash": accounts.sha256_hex(credential)}).first()
    if row is None or row.revoked_at is not None:
        return TerminalHello(None, [], None)
    terminal = accounts.TerminalInfo(row.id, row.name, row.unit_id, False)
    anns = [
        AnnouncementInfo(a.id, a.unit_id, a.title, a.body, a.published_at, a.expires_at)
        for a in conn.execute(
            _ACTIVE_ANNOUNCEMENTS, {"units": tree.ancestors(row.unit_id), "now": utcnow()}
        )
    ]
    visit = conn.execute(_OPEN_VISIT_OF_TERMINAL, {"tid": row.id}).first()
    return TerminalHello(terminal, anns, None if visit is None else _session_row(visit._mapping))


@dataclasses.dataclass(frozen=True, slots=True)
class LeaveView:
    """The outcome of :func:`leave_session`.

    Attributes:
        session: the session with the leaving principal's rows (as :func:`get_session_for`).
        participant: the participant's row after the leave.
        nobody_left: no participant who had joined is still present.
    """

    session: SessionInfo
    participant: ParticipantInfo
    nobody_left: bool


def leave_session(conn: Connection, session_id: str, participant_id: str, reason: str) -> LeaveView:
    """Record a participant's leave, its ``left`` event and the session's activity: one transaction.

    Idempotent for the leave time (the first leave wins); the publishing flag is cleared. Index
    searches only, whatever the size of the session. Runs through ``Store.run``.
    """
    row = conn.execute(_PARTICIPANT_BY_ID, {"pid": participant_id}).first()
    if row is None or row.session_id != session_id:
        raise NotFound(f"participant {participant_id!r} not found in session {session_id!r}")
    now = utcnow()
    conn.execute(_MARK_LEFT, {"pid": participant_id, "now": now, "reason": reason[:64]})
    conn.execute(_TOUCH_SESSION, {"sid": session_id, "now": now})
    conn.execute(
        _INSERT_EVENT,
        {
            "session_id": session_id,
            "at": now,
            "actor": "",
            "event": "left",
            "participant_id": participant_id,
            "data": {"reason": reason},
        },
    )
    srow = conn.execute(_SESSION_BY_ID, {"sid": session_id}).first()
    if srow is None:
        raise NotFound(f"session {session_id!r} not found")
    mine = tuple(
        _participant_row(r._mapping)
        for r in conn.execute(
            _MY_ROWS, {"sid": session_id, "pkind": row.principal_kind, "pid": row.principal_id}
        )
    )
    p = next(q for q in mine if q.id == participant_id)
    nobody_left = conn.execute(_ANYONE_PRESENT, {"sid": session_id}).first() is None
    return LeaveView(_session_row(srow._mapping, mine), p, nobody_left)


@dataclasses.dataclass(frozen=True, slots=True)
class JoinDecision:
    """The caller's answer to a join: the new participant's role and admission.

    Attributes:
        role: the participant's role.
        admission: admitted (joined now) or lobby.
        start: move a waiting session to live with this join (atomically: of two first joins
            at once, one makes the transition).
    """

    role: ParticipantRole
    admission: AdmissionState
    start: bool


@dataclasses.dataclass(frozen=True, slots=True)
class JoinView:
    """The outcome of :func:`join_session`.

    Attributes:
        session: the session with only the joining principal's participant rows (as
            :func:`get_session_for`), its state after the join.
        participant: the row written by this join; None when the caller's decision was None
            (the principal is already present: a reload rejoins that row).
        present: present participants of the session, oldest first, without ``hidden`` roles
            but with ``participant``: what the joining client's snapshot shows.
    """

    session: SessionInfo
    participant: ParticipantInfo | None
    present: tuple[ParticipantInfo, ...]


def join_session(
    conn: Connection,
    session_id: str,
    principal: Principal,
    decide: Callable[[SessionInfo], JoinDecision | None],
    *,
    hidden: Callable[[SessionKind], Iterable[ParticipantRole]],
    hub_id: str = "",
) -> JoinView:
    """Read a session for a join, ask ``decide``, and append the participant: one transaction.

    ``decide`` sees the session with the principal's own rows (it applies the policy and may
    raise, which writes nothing) and returns the role and admission of a new row, or None to
    write nothing. The participant row, the session's activity time (and the waiting → live
    transition when the decision says so) and the ``joined``/``lobby`` event are written in the
    same transaction, so a join is in the database before the caller acknowledges it. Runs
    through ``Store.run``.
    """
    srow = conn.execute(_SESSION_BY_ID, {"sid": session_id}).first()
    if srow is None:
        raise NotFound(f"session {session_id!r} not found")
    smap = srow._mapping
    hidden_roles = set(hidden(smap["kind"]))
    visible = [r for r in ParticipantRole if r not in hidden_roles]
    found = {
        r.id: r
        for r in conn.execute(
            _MY_ROWS, {"sid": session_id, "pkind": principal.kind, "pid": principal.id}
        )
    }
    if visible:
        for r in conn.execute(_PRESENT_ROWS, {"sid": session_id, "visible": visible}):
            found.setdefault(r.id, r)
    rows = [
        _participant_row(r._mapping)
        for r in sorted(found.values(), key=lambda r: (r.created_at, r.id))
    ]
    ref = principal.ref
    mine = tuple(p for p in rows if p.principal_ref == ref)
    present = [p for p in rows if p.left_at is None and p.role not in hidden_roles]
    s = _session_row(smap, mine)
    decision = decide(s)
    if decision is None:
        return JoinView(s, None, tuple(present))
    now = utcnow()
    joined = decision.admission is AdmissionState.ADMITTED
    p = ParticipantInfo(
        id=new_id(),
        session_id=session_id,
        principal_ref=ref,
        display_name=principal.name[:200],
        role=decision.role,
        unit_id=principal.unit_id,
        admission=decision.admission,
        joined_at=now if joined else None,
        left_at=None,
        leave_reason="",
        publishing=False,
        hub_id=hub_id,
    )
    conn.execute(
        _INSERT_PARTICIPANT,
        {
            "id": p.id,
            "session_id": session_id,
            "principal_kind": principal.kind,
            "principal_id": principal.id,
            "display_name": p.display_name,
            "role": p.role,
            "unit_id": p.unit_id,
            "admission": p.admission,
            "joined_at": p.joined_at,
            "left_at": None,
            "leave_reason": "",
            "publishing": False,
            "hub_id": hub_id,
            "created_at": now,
        },
    )
    started = False
    if decision.start and s.state is SessionState.WAITING:
        started = bool(conn.execute(_START_SESSION, {"sid": session_id, "now": now}).rowcount)
    if not started:
        conn.execute(_TOUCH_SESSION, {"sid": session_id, "now": now})
    conn.execute(
        _INSERT_EVENT,
        {
            "session_id": session_id,
            "at": now,
            "actor": ref[:80],
            "event": "joined" if joined else "lobby",
            "participant_id": p.id,
            "data": {"role": decision.role.value},
        },
    )
    if started:
        s = dataclasses.replace(s, state=SessionState.LIVE, started_at=now)
    s = dataclasses.replace(s, participants=(*mine, p), last_activity_at=now)
    return JoinView(s, p, (*present, p))
