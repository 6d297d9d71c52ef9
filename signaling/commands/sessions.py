"""Conferences, mediations, trainings and field sessions: create, join, leave, end, link an item."""

from __future__ import annotations

from config import errors
from records import accounts, items, sessions
from records.enums import (
    AdmissionState,
    ParticipantRole,
    PrincipalKind,
    SessionKind,
    SessionState,
)
from records.lifecycle import EventType
from records.policy import Action, may_create_session, require, role_on_join
from signaling import bus_messages as B
from signaling import events as E
from signaling.context import Context
from signaling.messages import SessionCreate, SessionEnd, SessionJoin, SessionLeave, SessionLinkItem
from signaling.registry import Reply, command
from signaling.views import (
    CLOSED_STATES,
    hidden_roles,
    participant_json,
    session_brief,
)


@command(SessionCreate)
async def session_create(ctx: Context, req: SessionCreate) -> Reply:
    """Create a conference, mediation, training, call or field session."""
    principal = ctx.principal
    kind = SessionKind(req.kind)
    unit_id = req.unit_id or principal.unit_id
    if unit_id is None or ctx.tree.get(unit_id) is None:
        raise errors.NotFound(f"unit {unit_id!r} not found")
    decision = may_create_session(principal, kind, unit_id, ctx.tree)
    if not decision:
        raise errors.AccessDenied(decision.reason)
    record = req.record
    if record is None:
        record = kind.value in ctx.settings.recording_automatic
    elif not record and kind.value in ctx.settings.recording_automatic:
        raise errors.ValidationError(f"{kind.value} sessions are always recorded")
    async with ctx.tx() as tx:
        s = await sessions.create_session(
            tx,
            kind=kind,
            unit_id=unit_id,
            title=req.title,
            convener_account_id=principal.account_id,
            recorded=bool(record),
        )
        await sessions.log_event(tx, s.id, "created", actor=principal.ref)
        await accounts.audit(
            tx, principal.ref, "session_create", "session", s.id, remote=ctx.conn.remote
        )
    return {"session": session_brief(s)}


@command(SessionJoin)
async def session_join(ctx: Context, req: SessionJoin) -> Reply:
    """Join a session (a reload rejoins as the same participant)."""
    principal = ctx.principal
    tree = ctx.tree

    def decide_join(s: sessions.SessionInfo) -> sessions.JoinDecision | None:
        # runs inside the join's transaction (on the database thread with SQLite): reads
        # only immutable values; raising writes nothing
        require(principal, Action.JOIN_SESSION, s.target(), tree)
        if s.state in CLOSED_STATES:
            raise errors.InvalidTransition(f"session {s.id} is {s.state.value}")
        if any(p.left_at is None for p in s.participants):
            return None  # a reload: rejoin the same participant
        if principal.kind is PrincipalKind.INVITE and any(
            p.admission in (AdmissionState.REFUSED, AdmissionState.REMOVED) for p in s.participants
        ):
            raise errors.AccessDenied(f"entry to session {s.id} was refused")
        role, admission = role_on_join(principal, s.target())
        start = (
            s.state is SessionState.WAITING
            and s.kind is not SessionKind.VISIT
            and admission is AdmissionState.ADMITTED
        )
        return sessions.JoinDecision(role, admission, start)

    # one transaction: the session, the principal's rows, the policy, the participant row,
    # the event and what the snapshot shows; the join is written before the ack is sent
    view = await ctx.run(
        sessions.join_session,
        req.session,
        principal,
        decide_join,
        hidden=hidden_roles,
        hub_id=ctx.hub_id,
    )
    s, p = view.session, view.participant
    if p is None:
        mine = [q for q in s.participants if q.left_at is None]
        if mine[-1].admission is AdmissionState.REFUSED:
            raise errors.AccessDenied(f"the convener refused entry to session {s.id}")
        return await ctx.presence.bind(ctx.conn, s, mine[-1], resumed=True)
    role, admission = p.role, p.admission
    await ctx.presence.attach(ctx.conn, s, p)
    snapshot = ctx.rooms.snapshot(s, p, view.present)
    if admission is AdmissionState.LOBBY:
        await ctx.rooms.event(
            s.id, E.LobbyWaiting(session=s.id, participant=participant_json(p)), "staff"
        )
    elif s.kind is SessionKind.TRAINING and role is ParticipantRole.VIEWER:
        await ctx.rooms.op(B.AttendanceChanged(session_id=s.id))
    else:
        await ctx.rooms.event(
            s.id,
            E.ParticipantJoined(session=s.id, participant=participant_json(p)),
            "admitted",
        )
    return snapshot


@command(SessionLeave)
async def session_leave(ctx: Context, req: SessionLeave) -> Reply:
    """Leave a session."""
    pid = ctx.conn.participants.get(req.session)
    if pid is None:
        raise errors.NotFound(f"not in session {req.session!r}")
    await ctx.rooms.leave(req.session, pid, "left")
    ctx.conn.participants.pop(req.session, None)
    return {"session": req.session}


@command(SessionEnd)
async def session_end(ctx: Context, req: SessionEnd) -> Reply:
    """End a session, with its outcome written into the linked petition item."""
    principal = ctx.principal
    s = await ctx.session(req.session, principal)
    if s.kind is SessionKind.VISIT and principal.kind is PrincipalKind.TERMINAL:
        require(principal, Action.JOIN_SESSION, s.target(), ctx.tree)
    else:
        ctx.require_moderator(principal, s, Action.MODERATE_SESSION)
    if req.outcome:
        async with ctx.tx() as tx:
            await sessions.update_session(tx, s.id, outcome=req.outcome)
            if s.item_id and ctx.calendar is not None:
                # the outcome (e.g. mediation agreement reached) goes into the item's history
                await items.apply_event(  # the link was checked when it was made
                    tx,
                    ctx.calendar,
                    s.item_id,
                    EventType.NOTE,
                    account_id=principal.account_id,
                    reason=f"{s.kind.value} outcome: {req.outcome}",
                    data={"session": s.id, "kind": s.kind.value, "outcome": req.outcome},
                )
    await ctx.rooms.end(s, f"ended by {principal.ref}", actor=principal.ref)
    return {"session": s.id, "state": "ended"}


@command(SessionLinkItem)
async def link_item(ctx: Context, req: SessionLinkItem) -> Reply:
    """Link the session to a petition item."""
    principal = ctx.principal
    s = await ctx.session(req.session, principal)
    ctx.require_moderator(principal, s, Action.MODERATE_SESSION)
    async with ctx.tx() as tx:
        item = await items.get_item(tx, req.item_id)  # NotFound for a made-up id
        require(principal, Action.EDIT_ITEM, item.target(), ctx.tree)
        await sessions.update_session(tx, s.id, item_id=req.item_id)
        await sessions.log_event(
            tx, s.id, "item_linked", actor=principal.ref, data={"item": req.item_id}
        )
    await ctx.rooms.event(s.id, E.SessionItem(session=s.id, item_id=req.item_id), "staff")
    return {"session": s.id, "item_id": req.item_id}
