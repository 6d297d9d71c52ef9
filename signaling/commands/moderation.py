"""A moderator's acts on participants: admit from the lobby, refuse, mute, remove."""

from __future__ import annotations

from config import errors
from records import sessions
from records.enums import AdmissionState, SessionState
from signaling import bus_messages as B
from signaling import events as E
from signaling.context import Context
from signaling.messages import LobbyAdmit, LobbyRefuse, ParticipantMute, ParticipantRemove
from signaling.registry import Reply, command
from signaling.views import participant_json


@command(LobbyAdmit)
async def admit(ctx: Context, req: LobbyAdmit) -> Reply:
    """Admit a participant from the lobby."""
    principal, s, target = await ctx.moderated(req)
    if target.admission is not AdmissionState.LOBBY or target.left_at is not None:
        raise errors.InvalidTransition(
            f"participant {target.id} is {target.admission.value}, not in the lobby"
        )
    async with ctx.tx() as tx:
        await sessions.set_participant(tx, target.id, admission=AdmissionState.ADMITTED)
        await sessions.participant_joined(tx, target.id)
        if s.state is SessionState.WAITING:
            # atomic waiting → live (UPDATE … WHERE state = waiting): two first joins at
            # once must not both try the transition (records names it after visits)
            await sessions.accept_visit(tx, s.id)
        await sessions.log_event(
            tx, s.id, "admitted", actor=principal.ref, participant_id=target.id
        )
        p = await sessions.get_participant(tx, target.id)
    await ctx.rooms.op(B.MemberAdmitted(session_id=s.id, participant=target.id))
    await ctx.rooms.event(
        s.id,
        E.ParticipantJoined(session=s.id, participant=participant_json(p)),
        "admitted",
    )
    return {"participant": target.id, "admission": "admitted"}


@command(LobbyRefuse)
async def refuse(ctx: Context, req: LobbyRefuse) -> Reply:
    """Refuse a participant waiting in the lobby."""
    principal, s, target = await ctx.moderated(req)
    if target.admission is not AdmissionState.LOBBY:
        raise errors.InvalidTransition(
            f"participant {target.id} is {target.admission.value}, not in the lobby"
        )
    async with ctx.tx() as tx:
        await sessions.set_participant(tx, target.id, admission=AdmissionState.REFUSED)
        await sessions.participant_left(tx, target.id, "refused")
        await sessions.log_event(tx, s.id, "refused", actor=principal.ref, participant_id=target.id)
    await ctx.rooms.event(
        s.id, E.Admission(session=s.id, state="refused"), f"participant:{target.id}"
    )
    await ctx.rooms.event(s.id, E.LobbyLeft(session=s.id, participant=target.id), "staff")
    await ctx.rooms.op(B.MemberKicked(session_id=s.id, participant=target.id, reason="refused"))
    return {"participant": target.id, "admission": "refused"}


@command(ParticipantMute)
async def mute(ctx: Context, req: ParticipantMute) -> Reply:
    """Mute or unmute a participant's audio or video."""
    principal, s, target = await ctx.moderated(req)
    await ctx.relay.send(
        B.PeerMute(session_id=s.id, peer=target.id, kind=req.kind, muted=req.muted)
    )
    async with ctx.tx() as tx:
        await sessions.log_event(
            tx,
            s.id,
            "muted" if req.muted else "unmuted",
            actor=principal.ref,
            participant_id=target.id,
            data={"kind": req.kind},
        )
    await ctx.rooms.event(
        s.id,
        E.ParticipantMuted(
            session=s.id,
            participant=target.id,
            kind=req.kind,
            muted=req.muted,
        ),
    )
    return {"participant": target.id, "kind": req.kind, "muted": req.muted}


@command(ParticipantRemove)
async def remove(ctx: Context, req: ParticipantRemove) -> Reply:
    """Remove a participant from the session."""
    principal, s, target = await ctx.moderated(req)
    async with ctx.tx() as tx:
        await sessions.set_participant(
            tx, target.id, admission=AdmissionState.REMOVED, publishing=False
        )
        await sessions.participant_left(tx, target.id, "removed")
        await sessions.log_event(tx, s.id, "removed", actor=principal.ref, participant_id=target.id)
    await ctx.relay.send(B.PeerClose(session_id=s.id, peer=target.id))
    await ctx.rooms.op(B.MemberKicked(session_id=s.id, participant=target.id, reason="removed"))
    await ctx.rooms.event(
        s.id, E.ParticipantLeft(session=s.id, participant=target.id, reason="removed")
    )
    return {"participant": target.id, "removed": True}
