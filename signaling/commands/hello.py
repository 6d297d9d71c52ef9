"""Saying hello (login, device credential, invite; resume) and keeping the line alive."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from records import accounts, sessions
from records.enums import PrincipalKind
from signaling import events as E
from signaling import protocol as P
from signaling.context import Context
from signaling.messages import Hello, Ping
from signaling.registry import Reply, command
from signaling.tokens import sign_resume, verify_resume


@command(Hello)
async def hello(ctx: Context, req: Hello) -> Reply:
    """Authenticate the connection (before anything else); with ``resume``, rebind it."""
    principal = ctx.cookie
    token = req.token
    terminal_hello: sessions.TerminalHello | None = None
    if token and token.startswith(accounts.TERMINAL_PREFIX):
        # the credential, the announcements and the open visit in one transaction
        terminal_hello = await ctx.run(sessions.terminal_hello, token, ctx.tree)
        terminal = terminal_hello.terminal
        principal = terminal.principal() if terminal else None
        community = ctx.tree.get(terminal.unit_id) if terminal else None
        if principal is not None and community is not None:
            # people see a terminal as its community: the officer in a visit, the trainer
            # when it raises a hand in a training (a device name means nothing to them)
            principal = dataclasses.replace(principal, name=community.name)
    elif token:
        async with ctx.tx() as tx:
            if token.startswith(accounts.INVITE_PREFIX):
                invite = await accounts.resolve_invite(tx, ctx.settings.secret_key, token)
                principal = invite.principal() if invite else None
            else:
                principal = None
    if principal is None:
        async with ctx.tx() as tx:
            await accounts.audit(
                tx, "anonymous", "ws_hello", remote=ctx.conn.remote, outcome="denied"
            )
        raise P.ProtocolError(
            P.UNAUTHENTICATED,
            "a valid login, device credential or invite is needed",
            ctx.request_id,
        )
    if req.resume and (verify_resume(ctx.settings.secret_key, req.resume, principal.ref) is None):
        # checked before the connection is authenticated: the client may say hello again
        # without the token on the same connection (web/static/js/ws.js does)
        async with ctx.tx() as tx:
            await accounts.audit(
                tx,
                principal.ref,
                "ws_resume",
                remote=ctx.conn.remote,
                outcome="denied",
                detail={"reason": "resume token not valid for this principal"},
            )
        raise P.ProtocolError(
            P.UNAUTHENTICATED, "resume token is not valid for this principal", ctx.request_id
        )
    ctx.conn.principal = principal
    resumed: list[dict[str, Any]] = []
    if req.resume:
        resumed = await ctx.presence.resume_all(ctx.conn, principal)
    reply: dict[str, Any] = {
        "principal": {
            "kind": principal.kind.value,
            "id": principal.id,
            "name": principal.name,
            "unit_id": principal.unit_id,
            "roles": sorted(r.value for r in principal.roles),
            "session_id": principal.session_id,
        },
        "resume_token": sign_resume(ctx.settings.secret_key, principal.ref, ctx.conn.id),
        "resume_window_s": ctx.settings.resume_window_s,
        "heartbeat_s": ctx.settings.heartbeat_timeout_s,
        "resumed": resumed,
        "server_time": time.time(),
    }
    if principal.kind is PrincipalKind.TERMINAL:
        assert principal.unit_id is not None
        if terminal_hello is not None:
            anns, visit = terminal_hello.announcements, terminal_hello.visit
        else:
            async with ctx.tx() as tx:
                anns = await sessions.active_announcements(
                    tx, ctx.tree.ancestors(principal.unit_id)
                )
                visit = await sessions.open_visit_of_terminal(tx, int(principal.id))
        reply["announcements"] = [a.as_json() for a in anns]
        if visit is not None:
            reply["visit"] = await ctx.presence.rebind_terminal_visit(ctx.conn, visit)
    return reply


@command(Ping)
async def ping(ctx: Context, req: Ping) -> Reply:
    """Answer a ping (a ping without an id gets a ``pong`` event)."""
    if ctx.request_id is None:
        ctx.conn.send(E.Pong(at=time.time()))
    return {"at": time.time()}
