"""Sessions and participants through the ORM: create, read, join and leave, state changes, events.

The database is written first (DESIGN.md decision 4): a session row exists before media
starts, joins and leaves are appended as they happen, and :func:`mark_interrupted` turns
sessions that a crash left live into ``interrupted`` at start, keeping everything written.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import InvalidTransition, NotFound, RecordsError, ValidationError
from records import models
from records.base import utcnow
from records.enums import (
    AdmissionState,
    ParticipantRole,
    PrincipalKind,
    SessionKind,
    SessionState,
)
from records.principals import Principal
from records.sessions.values import (
    TRANSITIONS,
    ParticipantInfo,
    SessionInfo,
    participant_info,
    session_info,
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
    return session_info(row)


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
    return session_info(row, parts)


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
        return session_info(row)
    parts = (
        await db.scalars(
            select(models.Participant)
            .where(models.Participant.session_id == session_id)
            .where(models.Participant.principal_kind == principal_kind)
            .where(models.Participant.principal_id == principal_id)
            .order_by(models.Participant.created_at, models.Participant.id)
        )
    ).all()
    return session_info(row, parts)


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
    return [participant_info(r) for r in (await db.scalars(q)).all()]


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
    return session_info(row)


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
    return participant_info(row)


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
    return participant_info(row)


async def get_participant(db: AsyncSession, participant_id: str) -> ParticipantInfo:
    """One participant row or NotFound."""
    row = await db.get(models.Participant, participant_id)
    if row is None:
        raise NotFound(f"participant {participant_id!r} not found")
    return participant_info(row)


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
    return [participant_info(r) for r in rows]


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
    return [session_info(r) for r in (await db.scalars(q)).all()]


async def open_visit_of_terminal(db: AsyncSession, terminal_id: int) -> SessionInfo | None:
    """The terminal's waiting or live visit, if any (a reload keeps its place)."""
    row = await db.scalar(
        select(models.Session)
        .where(models.Session.terminal_id == terminal_id)
        .where(models.Session.state.in_([SessionState.WAITING, SessionState.LIVE]))
        .order_by(models.Session.created_at.desc())
        .limit(1)
    )
    return None if row is None else session_info(row)


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
    return [session_info(r) for r in (await db.scalars(q)).all()]
