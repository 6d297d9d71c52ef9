"""The hub's hot paths: a terminal's hello, a join and a leave, each one transaction.

SQLAlchemy Core copies of ORM functions in :mod:`records.sessions.core`,
:mod:`records.sessions.announcements` and :mod:`records.accounts`;
``tests/records/test_session_hotpath.py`` checks that each copy agrees with the function it
replaces on the same data.
"""

import dataclasses
import functools
from collections.abc import Callable, Iterable
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from config.errors import NotFound
from records import accounts, models
from records.base import new_id, utcnow
from records.enums import (
    AdmissionState,
    ParticipantRole,
    SessionKind,
    SessionState,
)
from records.orgs import OrgTree
from records.principals import Principal
from records.sessions.announcements import AnnouncementInfo
from records.sessions.values import ParticipantInfo, SessionInfo

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


def _any_role(roles: Iterable[ParticipantRole]) -> ColumnElement[bool]:
    # role = a OR role = b …: SQLite searches the index once per role, as for IN (…), but the
    # statement is compiled once; an expanding IN is re-rendered at every execution (measured:
    # the larger part of a join's database time)
    return or_(*(_PT.c.role == r for r in roles))


@functools.cache  # a handful of sets (one per session kind's hidden roles)
def _present_rows(visible: frozenset[ParticipantRole]) -> Select[Any]:
    """The present participants of a session with a visible role (one statement per set)."""
    return select(_PT).where(
        (_PT.c.session_id == bindparam("sid"))
        & _any_role(sorted(visible))
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
    .where(_any_role(ParticipantRole))
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


@functools.cache  # one statement per depth of the org tree
def _active_announcements(units: int) -> Select[Any]:
    """Unexpired announcements of ``units`` units (bound as u0, u1, …), newest first."""
    return (
        select(
            _AN.c.id, _AN.c.unit_id, _AN.c.title, _AN.c.body, _AN.c.published_at, _AN.c.expires_at
        )
        .where(or_(*(_AN.c.unit_id == bindparam(f"u{i}") for i in range(units))))
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

# the hub's periodic reads and writes: on the database thread beside the joins, never holding
# them up (through the ORM each took the SQLite gate exclusively, a stall every second)
_ATTENDANCE = (
    select(_PT.c.unit_id, func.count())
    .where(_PT.c.session_id == bindparam("sid"))
    .where(_PT.c.role.in_(bindparam("roles", expanding=True)))
    .where(_PT.c.left_at.is_(None))
    .where(_PT.c.joined_at.is_not(None))
    .group_by(_PT.c.unit_id)
)
_TOUCH_LIVE_SESSIONS = (
    update(_S)
    .where(_S.c.id.in_(bindparam("sids", expanding=True)))
    .where(_S.c.state == SessionState.LIVE)
    .values(last_activity_at=bindparam("now"))
)
_ORPHANS = (
    select(_PT)
    .where(_PT.c.left_at.is_(None))
    .where(_PT.c.hub_id != "")
    .where(_PT.c.hub_id.not_in(bindparam("hubs", expanding=True)))
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
    units = tree.ancestors(row.unit_id)
    anns = (
        [
            AnnouncementInfo(a.id, a.unit_id, a.title, a.body, a.published_at, a.expires_at)
            for a in conn.execute(
                _active_announcements(len(units)),
                {"now": utcnow(), **{f"u{i}": u for i, u in enumerate(units)}},
            )
        ]
        if units
        else []
    )
    visit = conn.execute(_OPEN_VISIT_OF_TERMINAL, {"tid": row.id}).mappings().first()
    return TerminalHello(terminal, anns, None if visit is None else _session_row(visit))


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
    srow = conn.execute(_SESSION_BY_ID, {"sid": session_id}).mappings().first()
    if srow is None:
        raise NotFound(f"session {session_id!r} not found")
    mine = tuple(
        _participant_row(r)
        for r in conn.execute(
            _MY_ROWS, {"sid": session_id, "pkind": row.principal_kind, "pid": row.principal_id}
        ).mappings()
    )
    p = next(q for q in mine if q.id == participant_id)
    nobody_left = conn.execute(_ANYONE_PRESENT, {"sid": session_id}).first() is None
    return LeaveView(_session_row(srow, mine), p, nobody_left)


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
    smap = conn.execute(_SESSION_BY_ID, {"sid": session_id}).mappings().first()
    if smap is None:
        raise NotFound(f"session {session_id!r} not found")
    hidden_roles = set(hidden(smap["kind"]))
    visible = [r for r in ParticipantRole if r not in hidden_roles]
    found = {
        r["id"]: r
        for r in conn.execute(
            _MY_ROWS, {"sid": session_id, "pkind": principal.kind, "pid": principal.id}
        ).mappings()
    }
    if visible:
        present_rows = conn.execute(_present_rows(frozenset(visible)), {"sid": session_id})
        for r in present_rows.mappings():
            found.setdefault(r["id"], r)
    rows = [
        _participant_row(r)
        for r in sorted(found.values(), key=lambda r: (r["created_at"], r["id"]))
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


def attendance(
    conn: Connection, session_id: str, roles: Iterable[ParticipantRole]
) -> dict[int | None, int]:
    """:func:`~records.sessions.core.attendance_counts` as one Core read (``Store.run``)."""
    rows = conn.execute(_ATTENDANCE, {"sid": session_id, "roles": list(roles)})
    return {unit_id: int(n) for unit_id, n in rows}


def touch_live_sessions(conn: Connection, session_ids: Iterable[str]) -> None:
    """:func:`~records.sessions.core.touch_sessions` as one Core write (``Store.run``)."""
    ids = list(session_ids)
    if ids:
        conn.execute(_TOUCH_LIVE_SESSIONS, {"sids": ids, "now": utcnow()})


def orphans(conn: Connection, live_hubs: Iterable[str]) -> list[ParticipantInfo]:
    """:func:`~records.sessions.core.orphaned_participants` as one Core read (``Store.run``)."""
    rows = conn.execute(_ORPHANS, {"hubs": list(live_hubs)}).mappings()
    return [_participant_row(r) for r in rows]
