"""Invites, terminals, accounts and the audit log."""

from __future__ import annotations

import datetime as dt
import logging

from aiohttp import web

from config.errors import NotFound, ValidationError
from records import accounts, sessions
from records.enums import (
    SessionState,
)
from records.policy import Action, UnitTarget
from web import keys, rest, wire
from web.auth import (
    authorize,
    remote_of,
    require_official,
)
from web.input import query_int, read_json
from web.rest import operation, parse_body, reply
from web.routes.sessions import load_session

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.post("/api/sessions/{session_id}/invites")
@operation(
    "A time-limited invite link for this session",
    tag="sessions",
    body=wire.InviteBody,
    response=wire.Invite,
    status=201,
    path=rest.SessionPath,
)
async def create_invite(request: web.Request) -> web.Response:
    """Create a time-limited invite link bound to this session."""
    s = await load_session(request, Action.INVITE)
    p = require_official(request)
    body = parse_body(wire.InviteBody, await read_json(request))
    role, name, unit_id = body.role, body.name, body.unit_id
    settings = request.app[keys.SETTINGS]
    ttl_s = body.ttl_s if body.ttl_s is not None else int(settings.invite_default_ttl_h * 3600)
    if s.state in (SessionState.ENDED, SessionState.CANCELLED, SessionState.INTERRUPTED):
        raise ValidationError(f"session {s.id} is {s.state.value}; invites need an open session")
    async with request.app[keys.STORE].transaction() as tx:
        invite, token = await accounts.create_invite(
            tx,
            settings.secret_key,
            s.id,
            role,
            name,
            unit_id,
            p.account_id,
            dt.timedelta(seconds=ttl_s),
        )
        await accounts.audit(
            tx,
            p.ref,
            "invite_create",
            "session",
            s.id,
            remote=remote_of(request),
            detail={"invite": invite.id, "role": role.value},
        )
    return reply(
        wire.Invite(
            id=invite.id,
            token=token,
            url=f"/join#invite={token}",
            expires_at=invite.expires_at,
            role=role,
        ),
        status=201,
    )


@routes.delete("/api/invites/{invite_id}")
@operation("Revoke an invite", tag="sessions", response=rest.Ok, path=wire.InvitePath)
async def revoke_invite(request: web.Request) -> web.Response:
    """Revoke an invite at once; a participant using it is removed from the session."""
    p = require_official(request)
    invite_id = request.match_info["invite_id"]
    store = request.app[keys.STORE]
    async with store.transaction() as tx:
        info = await accounts.get_valid_invite(tx, invite_id)
        if info is None:
            raise NotFound(f"invite {invite_id!r} not found, expired or already revoked")
        s = await sessions.get_session(tx, info.session_id)
    await authorize(request, Action.INVITE, s.target())
    async with store.transaction() as tx:
        session_id = await accounts.revoke_invite(tx, invite_id)
        await accounts.audit(
            tx, p.ref, "invite_revoke", "invite", invite_id, remote=remote_of(request)
        )
    hub = request.app.get(keys.HUB)
    if hub is not None:
        await hub.invite_revoked(session_id, invite_id)
    return reply(rest.Ok())


@routes.post("/api/terminals")
@operation(
    "Create a community terminal; the credential is shown once",
    tag="admin",
    body=wire.TerminalBody,
    response=wire.Terminal,
    status=201,
)
async def create_terminal(request: web.Request) -> web.Response:
    """Create a community terminal; its device credential is shown once, in this answer."""
    body = parse_body(wire.TerminalBody, await read_json(request))
    unit_id = body.unit_id
    p = await authorize(request, Action.MANAGE_TERMINALS, UnitTarget(unit_id))
    async with request.app[keys.STORE].transaction() as tx:
        terminal, credential = await accounts.create_terminal(tx, body.name, unit_id)
        await accounts.audit(
            tx, p.ref, "terminal_create", "terminal", str(terminal.id), remote=remote_of(request)
        )
    return reply(
        wire.Terminal(id=terminal.id, name=terminal.name, unit_id=unit_id, credential=credential),
        status=201,
    )


@routes.delete("/api/terminals/{terminal_id}")
@operation("Revoke a terminal's credential", tag="admin", response=rest.Ok, path=wire.TerminalPath)
async def revoke_terminal(request: web.Request) -> web.Response:
    """Revoke a terminal's credential."""
    try:
        terminal_id = int(request.match_info["terminal_id"])
    except ValueError as exc:
        raise NotFound("terminal not found") from exc
    store = request.app[keys.STORE]
    async with store.transaction() as tx:
        terminal = await accounts.get_terminal(tx, terminal_id)
    p = await authorize(request, Action.MANAGE_TERMINALS, UnitTarget(terminal.unit_id))
    async with store.transaction() as tx:
        await accounts.revoke_terminal(tx, terminal_id)
        await accounts.audit(
            tx, p.ref, "terminal_revoke", "terminal", str(terminal_id), remote=remote_of(request)
        )
    hub = request.app.get(keys.HUB)
    if hub is not None:
        await hub.terminal_revoked(terminal_id)
    return reply(rest.Ok())


@routes.post("/api/accounts")
@operation(
    "Create an official's account",
    tag="admin",
    body=wire.AccountBody,
    response=wire.Account,
    status=201,
)
async def create_account(request: web.Request) -> web.Response:
    """Create an official's account in a unit of the admin's scope."""
    body = parse_body(wire.AccountBody, await read_json(request))
    p = await authorize(request, Action.MANAGE_ACCOUNTS, UnitTarget(body.unit_id))
    async with request.app[keys.STORE].transaction() as tx:
        account = await accounts.create_account(
            tx, body.username, body.name, body.password, body.unit_id, body.roles
        )
        await accounts.audit(
            tx, p.ref, "account_create", "account", str(account.id), remote=remote_of(request)
        )
    return reply(wire.Account.of(account), status=201)


@routes.get("/api/audit")
@operation("The newest audit entries", tag="admin", response=wire.AuditLog, query=wire.AuditQuery)
async def audit_log(request: web.Request) -> web.Response:
    """The newest audit entries of the caller's scope (auditors and admins).

    Scoped like every other read: entries about objects of the caller's unit and the units
    below it, or made by their accounts and terminals; the petition bureau reads them all.
    """
    p = require_official(request)
    assert p.unit_id is not None
    await authorize(request, Action.VIEW_AUDIT, UnitTarget(p.unit_id))
    limit = query_int(request, "limit", lo=1, hi=1000, default=100)
    tree = request.app[keys.STORE].tree
    scope = None if tree.sees_everything(p.unit_id) else tree.subtree(p.unit_id)
    async with request.app[keys.STORE].transaction() as tx:
        rows = await accounts.audit_entries(
            tx,
            action=request.query.get("action"),
            object_id=request.query.get("object_id"),
            actor=request.query.get("actor"),
            limit=limit,
            unit_ids=scope,
        )
    return reply(
        wire.AuditLog(
            entries=[
                wire.AuditEntry(
                    at=r.at,
                    actor=r.actor,
                    action=r.action,
                    object_type=r.object_type,
                    object_id=r.object_id,
                    remote=r.remote,
                    outcome=r.outcome,
                    detail=r.detail,
                )
                for r in rows
            ]
        )
    )
