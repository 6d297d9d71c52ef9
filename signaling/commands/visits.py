"""Video visits (视频信访): a terminal asks, waits in the queue, an officer accepts, it is rated."""

from __future__ import annotations

from config import errors
from records import sessions
from records.base import utcnow
from records.deadlines import local_date
from records.enums import (
    AdmissionState,
    ParticipantRole,
    PrincipalKind,
    Role,
    SessionKind,
    SessionState,
)
from records.policy import Action, require
from signaling import bus_messages as B
from signaling import events as E
from signaling import protocol as P
from signaling.context import Context
from signaling.messages import QueueWatch, VisitAccept, VisitCancel, VisitRate, VisitRequest
from signaling.registry import Reply, command
from signaling.views import participant_json


@command(VisitRequest)
async def visit_request(ctx: Context, req: VisitRequest) -> Reply:
    """A terminal asks for a video visit: a waiting session in the queue."""
    principal = ctx.principal
    if principal.kind is not PrincipalKind.TERMINAL:
        raise errors.AccessDenied("only community terminals request video visits")
    assert principal.unit_id is not None
    tree = ctx.tree
    async with ctx.tx() as tx:
        existing = await sessions.open_visit_of_terminal(tx, int(principal.id))
    if existing is not None:
        return await ctx.presence.rebind_terminal_visit(ctx.conn, existing)
    reception = tree.reception_unit(principal.unit_id)
    if reception is None:
        raise errors.NotFound(f"no reception unit answers visits from unit {principal.unit_id}")
    leader_id = None
    if req.to_leader:
        async with ctx.tx() as tx:
            for unit_id in (reception.id, *tree.ancestors(reception.id)):
                # the roster's days are days in China, not the server's own time zone: after
                # 16:00 UTC a UTC host's date.today() is still yesterday there
                leader_id = await sessions.leader_on_duty(tx, local_date(utcnow()), unit_id)
                if leader_id is not None:
                    break
        if leader_id is None:
            raise errors.NotFound("no leader is on duty today")
    async with ctx.tx() as tx:
        s = await sessions.create_session(
            tx,
            kind=SessionKind.VISIT,
            unit_id=principal.unit_id,
            reception_unit_id=reception.id,
            category=req.category,
            terminal_id=int(principal.id),
            routed_to_leader_id=leader_id,
            recorded=SessionKind.VISIT.value in ctx.settings.recording_automatic,
            title="视频信访",
        )
        p = await sessions.add_participant(
            tx,
            s.id,
            principal,
            ParticipantRole.RESIDENT,
            AdmissionState.ADMITTED,
            joined=True,
            hub_id=ctx.hub_id,
        )
        await sessions.log_event(
            tx,
            s.id,
            "visit_requested",
            actor=principal.ref,
            participant_id=p.id,
            data={"category": req.category},
        )
    await ctx.queue.ensure_sub(reception.id)
    s_full = await ctx.session(s.id)
    snapshot = await ctx.presence.bind(ctx.conn, s_full, p, resumed=False)
    await ctx.queue.changed(reception.id)
    snapshot["position"] = await ctx.queue.position(s_full)
    return snapshot


@command(VisitCancel)
async def visit_cancel(ctx: Context, req: VisitCancel) -> Reply:
    """Cancel a waiting visit (its terminal, or reception)."""
    principal = ctx.principal
    s = await ctx.session(req.session, principal)
    if s.kind is not SessionKind.VISIT:
        raise errors.InvalidTransition(f"session {s.id} is a {s.kind.value}, not a visit")
    action = (
        Action.JOIN_SESSION if principal.kind is PrincipalKind.TERMINAL else Action.ANSWER_QUEUE
    )
    require(principal, action, s.target(), ctx.tree)
    async with ctx.tx() as tx:
        await sessions.set_state(tx, s.id, SessionState.CANCELLED, f"cancelled by {principal.ref}")
        await sessions.log_event(tx, s.id, "visit_cancelled", actor=principal.ref)
    await ctx.rooms.event(s.id, E.SessionStateChanged(session=s.id, state="cancelled"))
    await ctx.rooms.op(B.RoomEnded(session_id=s.id))
    if s.reception_unit_id is not None:
        await ctx.queue.changed(s.reception_unit_id)
    return {"session": s.id, "state": "cancelled"}


@command(VisitRate)
async def visit_rate(ctx: Context, req: VisitRate) -> Reply:
    """Rate an ended visit (its terminal's satisfaction rating)."""
    principal = ctx.principal
    s = await ctx.session(req.session, principal)
    if principal.kind is not PrincipalKind.TERMINAL or s.terminal_id != int(principal.id):
        raise errors.AccessDenied("only the visit's own terminal rates it")
    if s.state is not SessionState.ENDED:
        raise errors.InvalidTransition(f"session {s.id} is {s.state.value}; rate it after it ended")
    async with ctx.tx() as tx:
        await sessions.update_session(tx, s.id, rating=req.rating)
        await sessions.log_event(
            tx, s.id, "rated", actor=principal.ref, data={"rating": req.rating}
        )
    return {"session": s.id, "rating": req.rating}


@command(QueueWatch)
async def queue_watch(ctx: Context, req: QueueWatch) -> Reply:
    """Follow the visit queues (reception and leaders)."""
    principal = ctx.principal
    if principal.kind is not PrincipalKind.ACCOUNT or not principal.has(
        Role.RECEPTION, Role.LEADER
    ):
        raise errors.AccessDenied("watching the visit queue needs the reception or leader role")
    units = [u.id for u in ctx.tree.units.values() if u.is_reception]
    ctx.conn.watching_queue = frozenset(units)
    for unit_id in units:
        await ctx.queue.ensure_sub(unit_id)
    async with ctx.tx() as tx:
        waiting = await sessions.waiting_visits(tx, units)
    return {"visits": ctx.queue.visible(principal, waiting)}


@command(VisitAccept)
async def visit_accept(ctx: Context, req: VisitAccept) -> Reply:
    """An officer takes a waiting visit (one officer wins)."""
    principal = ctx.principal
    s = await ctx.session(req.session, principal)
    require(principal, Action.ANSWER_QUEUE, s.target(), ctx.tree)
    async with ctx.tx() as tx:
        taken = await sessions.accept_visit(tx, s.id)
        if not taken:
            current = await sessions.get_session(tx, s.id)
            raise P.ProtocolError(
                P.ALREADY_TAKEN,
                f"visit {s.id} is {current.state.value}: already taken",
                ctx.request_id,
            )
        p = await sessions.add_participant(
            tx,
            s.id,
            principal,
            ParticipantRole.OFFICER,
            AdmissionState.ADMITTED,
            joined=True,
            hub_id=ctx.hub_id,
        )
        await sessions.log_event(
            tx, s.id, "visit_accepted", actor=principal.ref, participant_id=p.id
        )
    s = await ctx.session(s.id)
    snapshot = await ctx.presence.bind(ctx.conn, s, p, resumed=False)
    await ctx.rooms.event(
        s.id, E.SessionStateChanged(session=s.id, state="live", recording=s.recorded)
    )
    await ctx.rooms.event(s.id, E.ParticipantJoined(session=s.id, participant=participant_json(p)))
    if s.reception_unit_id is not None:
        await ctx.queue.changed(s.reception_unit_id)
    return snapshot
