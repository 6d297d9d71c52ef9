"""Training (视频培训): viewers raise hands, the trainer promotes a speaker and demotes it."""

from __future__ import annotations

from config import errors
from records import sessions
from records.enums import ParticipantRole, SessionKind
from signaling import bus_messages as B
from signaling import events as E
from signaling.context import Context
from signaling.messages import HandRaise, ParticipantAct, TrainingDemote, TrainingPromote
from signaling.registry import Reply, command
from signaling.views import participant_json


@command(HandRaise)
async def hand_raise(ctx: Context, req: HandRaise) -> Reply:
    """Raise or lower a hand in a training."""
    member = ctx.member(req.session)
    if member.kind is not SessionKind.TRAINING:
        raise errors.InvalidTransition("hands are raised in training sessions")
    async with ctx.tx() as tx:
        await sessions.log_event(
            tx,
            member.session_id,
            "hand_raised" if req.raised else "hand_lowered",
            actor=member.principal.ref,
            participant_id=member.participant_id,
        )
    await ctx.rooms.event(
        member.session_id,
        E.HandRaised(
            session=member.session_id,
            participant=member.participant_id,
            name=member.principal.name,
            unit_id=member.principal.unit_id,
            raised=req.raised,
        ),
        "staff",
    )
    return {"raised": req.raised}


@command(TrainingPromote)
async def promote(ctx: Context, req: TrainingPromote) -> Reply:
    """Let a training's viewer speak."""
    return await _set_speaker(ctx, req, ParticipantRole.SPEAKER)


@command(TrainingDemote)
async def demote(ctx: Context, req: TrainingDemote) -> Reply:
    """Make a speaker a viewer again."""
    return await _set_speaker(ctx, req, ParticipantRole.VIEWER)


async def _set_speaker(ctx: Context, req: ParticipantAct, role: ParticipantRole) -> Reply:
    principal, s, target = await ctx.moderated(req)
    if s.kind is not SessionKind.TRAINING:
        raise errors.InvalidTransition("speakers are promoted in training sessions")
    if target.role not in (ParticipantRole.VIEWER, ParticipantRole.SPEAKER):
        raise errors.InvalidTransition(f"participant {target.id} is a {target.role.value}")
    async with ctx.tx() as tx:
        p = await sessions.set_participant(
            tx,
            target.id,
            role=role,
            publishing=False if role is ParticipantRole.VIEWER else None,
        )
        await sessions.log_event(
            tx,
            s.id,
            "promoted" if role is ParticipantRole.SPEAKER else "demoted",
            actor=principal.ref,
            participant_id=target.id,
        )
    await ctx.rooms.op(B.RoleChanged(session_id=s.id, participant=target.id, role=role.value))
    await ctx.rooms.event(s.id, E.ParticipantUpdated(session=s.id, participant=participant_json(p)))
    if role is ParticipantRole.VIEWER:
        # viewers stop receiving the demoted speaker's media
        await ctx.rooms.op(B.Unpublished(session_id=s.id, participant=target.id))
    return {"participant": target.id, "role": role.value}
