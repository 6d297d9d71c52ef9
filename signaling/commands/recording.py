"""Turning a session's recording on and off."""

from __future__ import annotations

from config import errors
from records import sessions
from records.policy import Action
from signaling import bus_messages as B
from signaling import events as E
from signaling.context import Context
from signaling.messages import RecordingSet
from signaling.registry import Reply, command


@command(RecordingSet)
async def recording_set(ctx: Context, req: RecordingSet) -> Reply:
    """Turn the session's recording on or off."""
    principal = ctx.principal
    s = await ctx.session(req.session, principal)
    ctx.require_moderator(principal, s, Action.RECORDING_CONTROL)
    if s.kind.value in ctx.settings.recording_automatic and not req.active:
        raise errors.ValidationError(f"{s.kind.value} sessions are always recorded")
    async with ctx.tx() as tx:
        await sessions.update_session(tx, s.id, recorded=req.active)
        await sessions.log_event(
            tx, s.id, "recording_on" if req.active else "recording_off", actor=principal.ref
        )
    await ctx.relay.send(B.RoomRecord(session_id=s.id, record=req.active))
    await ctx.rooms.event(s.id, E.RecordingChanged(session=s.id, active=req.active))
    return {"recording": req.active}
