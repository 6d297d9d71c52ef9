"""Text chat in a session (a training's viewers write to the trainer and speakers only)."""

from __future__ import annotations

import time

from config import errors
from records import sessions
from records.enums import ParticipantRole, SessionKind
from signaling import events as E
from signaling.context import Context
from signaling.messages import ChatSend
from signaling.registry import Reply, command


@command(ChatSend)
async def chat_send(ctx: Context, req: ChatSend) -> Reply:
    """Send a chat message to the session."""
    member = ctx.member(req.session)
    if not member.admitted:
        raise errors.AccessDenied("wait to be admitted")
    text = req.text.strip()
    if not text:
        raise errors.ValidationError("chat.send: text must not be empty")
    async with ctx.tx() as tx:
        await sessions.log_event(
            tx,
            member.session_id,
            "chat",
            actor=member.principal.ref,
            participant_id=member.participant_id,
            data={"text": text},
        )
    audience = (
        "speakers"
        if member.kind is SessionKind.TRAINING and member.role is ParticipantRole.VIEWER
        else "admitted"
    )
    event = E.ChatMessage(
        session=member.session_id,
        participant=member.participant_id,
        name=member.principal.name,
        text=text,
        at=time.time(),
    )
    await ctx.rooms.event(member.session_id, event, audience)
    if audience == "speakers" and member.conn is not None:
        member.conn.send(event)
    return {}
