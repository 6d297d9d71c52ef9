"""REST API of the foundation.

Login, health, metrics, org tree, sessions, invites, terminals, accounts, audit log,
announcements and the duty roster. Every route asks the policy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from config.errors import AccessDenied, GatewayError, NotFound, ValidationError
from records import accounts, enums, items, lookup, policy, receipts, sessions
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
from records.item_periods import is_provisional
from records.policy import Action, UnitTarget, in_scope
from records.principals import Principal
from web import keys
from web.auth import (
    COOKIE,
    CSRF,
    LOGIN_TOKEN,
    authorize,
    principal_of,
    remote_of,
    require_official,
)
from web.errors import error_response
from web.input import choice, integer, query_int, read_json, text
from web.metrics import CONTENT_TYPE

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def session_json(s: sessions.SessionInfo, *, with_participants: bool = True) -> dict[str, Any]:
    """The wire form of a session."""
    out: dict[str, Any] = {
        "id": s.id,
        "kind": s.kind.value,
        "state": s.state.value,
        "unit_id": s.unit_id,
        "reception_unit_id": s.reception_unit_id,
        "title": s.title,
        "category": s.category,
        "item_id": s.item_id,
        "recorded": s.recorded,
        "outcome": s.outcome,
        "rating": s.rating,
        "created_at": _iso(s.created_at),
        "started_at": _iso(s.started_at),
        "ended_at": _iso(s.ended_at),
        "end_reason": s.end_reason,
    }
    if with_participants:
        out["participants"] = [
            {
                "id": p.id,
                "name": p.display_name,
                "role": p.role.value,
                "unit_id": p.unit_id,
                "admission": p.admission.value,
                "joined_at": _iso(p.joined_at),
                "left_at": _iso(p.left_at),
                "leave_reason": p.leave_reason,
            }
            for p in s.participants
        ]
    return out


# ---- health and metrics ----------------------------------------------------------------------


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 when the database (and Redis, when configured) answer; 503 otherwise.

    ``calendar`` warns (without failing) when the current year's official holiday notice, or
    from 1 November next year's, is not loaded: due dates in that year are provisional.
    ``calendar_notice_missing`` is that year (``null`` when none is missing).
    """
    checks: dict[str, str] = {}
    status = 200
    calendar = request.app.get(keys.CALENDAR)
    missing: int | None = None
    if calendar is not None:
        # today in China Standard Time (UTC+8, no daylight saving; records.deadlines.CHINA_TZ)
        missing = calendar.missing_notice((utcnow() + dt.timedelta(hours=8)).date())
        checks["calendar"] = (
            "ok"
            if missing is None
            else f"warning: no official holiday notice for {missing}; its due dates are "
            f"provisional (national rules): import it with 'petition-gateway calendar "
            f"import CN-{missing}.toml'"
        )
    try:
        await request.app[keys.STORE].ping()
        checks["database"] = "ok"
    except GatewayError as exc:
        checks["database"] = str(exc)
        status = 503
    hub = request.app.get(keys.HUB)
    if hub is not None:
        try:
            await hub.bus.ping()
            checks["bus"] = "ok"
        except GatewayError as exc:
            checks["bus"] = str(exc)
            status = 503
    return web.json_response(
        # the year as a number too, for the dashboard's warning in the page's language
        {
            "status": "ok" if status == 200 else "failing",
            **checks,
            "calendar_notice_missing": missing,
        },
        status=status,
    )


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics, for admins and auditors."""
    principal = require_official(request)
    if not principal.has(Role.ADMIN, Role.AUDITOR, Role.LEADER):
        raise AccessDenied("metrics need the admin, auditor or leader role")
    body = request.app[keys.METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


# ---- login -----------------------------------------------------------------------------------


@routes.post("/api/login")
async def login(request: web.Request) -> web.Response:
    """Check username and password; set the session cookie; throttle failures."""
    data = await read_json(request)
    username = data.get("username")
    password = data.get("password")
    remote = remote_of(request)
    if not isinstance(username, str) or not isinstance(password, str):
        return error_response(422, "invalid", "username and password (strings) are required")
    if not username or len(username) > 64 or not password or len(password) > accounts.MAX_PASSWORD:
        return error_response(422, "invalid", "username (1-64) and password (1-256) expected")
    throttle = request.app[keys.THROTTLE]
    store = request.app[keys.STORE]
    settings = request.app[keys.SETTINGS]
    user_key, address_key = f"user:{username.lower()}", f"addr:{remote}"
    throttle_keys = (user_key, address_key)
    if await throttle.locked(*throttle_keys):
        async with store.transaction() as tx:
            await accounts.audit(
                tx,
                f"login:{username}",
                "login",
                "account",
                username,
                remote=remote,
                outcome="denied",
                detail={"reason": "throttled"},
            )
        return error_response(
            429,
            "throttled",
            f"too many failed logins for {username!r} or from {remote}; try again later",
        )
    async with store.transaction() as tx:
        account = await accounts.authenticate(tx, username, password)
        if account is None:
            await throttle.fail(*throttle_keys)
            await accounts.audit(
                tx,
                f"login:{username}",
                "login",
                "account",
                username,
                remote=remote,
                outcome="failed",
            )
            failed = True
        else:
            # the username's count only: resetting the address's would let anyone with an
            # account of their own reset their guesses at others' passwords by signing in
            await throttle.reset(user_key)
            ttl = dt.timedelta(hours=settings.session_ttl_h)
            token, csrf = await accounts.open_login(tx, account, ttl, remote)
            await accounts.audit(
                tx, f"account:{account.id}", "login", "account", str(account.id), remote=remote
            )
            failed = False
    if failed or account is None:
        return error_response(401, "bad_credentials", "wrong username or password")
    response = web.json_response({"account": _account_json(account), "csrf_token": csrf})
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies,
        max_age=int(settings.session_ttl_h * 3600),
        path="/",
    )
    return response


def _account_json(a: accounts.AccountInfo) -> dict[str, Any]:
    return {
        "id": a.id,
        "username": a.username,
        "name": a.display_name,
        "unit_id": a.unit_id,
        "roles": sorted(r.value for r in a.roles),
    }


@routes.post("/api/logout")
async def logout(request: web.Request) -> web.Response:
    """Revoke the login session and clear the cookie."""
    principal = principal_of(request)
    token = request.get(LOGIN_TOKEN)
    if token:
        async with request.app[keys.STORE].transaction() as tx:
            await accounts.close_login(tx, token)
            await accounts.audit(tx, principal.ref, "logout", remote=remote_of(request))
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    """Who am I: principal, unit, roles and (for cookie logins) the CSRF token."""
    p = principal_of(request)
    unit = request.app[keys.STORE].tree.get(p.unit_id) if p.unit_id is not None else None
    return web.json_response(
        {
            "kind": p.kind.value,
            "id": p.id,
            "name": p.name,
            "unit_id": p.unit_id,
            "unit_name": unit.name if unit else None,
            "roles": sorted(r.value for r in p.roles),
            "session_id": p.session_id,
            "csrf_token": request.get(CSRF),
        }
    )


# ---- org tree --------------------------------------------------------------------------------


@routes.get("/api/orgs")
async def org_units(request: web.Request) -> web.Response:
    """The units in the caller's scope (all units for the petition bureau).

    Not for invite holders: the org tree is nothing an invitee sees on ``/ws``.
    """
    p = principal_of(request)
    if p.kind is PrincipalKind.INVITE:
        raise AccessDenied("invite holders cannot read the org tree")
    tree = request.app[keys.STORE].tree
    units = [
        {
            "id": u.id,
            "code": u.code,
            "name": u.name,
            "level": u.level.value,
            "parent_id": u.parent_id,
            "active": u.active,
            # false for the units above the caller's, listed only to place it in the tree
            "in_scope": in_scope(p, u.id, tree),
        }
        for u in tree.units.values()
        if in_scope(p, u.id, tree) or (p.unit_id is not None and u.id in tree.ancestors(p.unit_id))
    ]
    return web.json_response({"units": units})


@routes.get("/api/leaders")
async def leaders(request: web.Request) -> web.Response:
    """The leaders who may lead the caller's work (``?unit_id=`` for one unit's).

    The leaders of the units in ``/api/orgs`` (the caller's scope and the units above it) and
    of the petition bureau, whose leaders lead every unit: the item page offers them as
    approvers of an extension (Art. 34), the duty roster as a unit's leaders on duty. Names
    and units only.
    """
    p = require_official(request)
    tree = request.app[keys.STORE].tree
    unit_id = query_int(request, "unit_id", lo=1, hi=2**31 - 1, default=0) or None
    assert p.unit_id is not None
    seen = {
        u.id
        for u in tree.units.values()
        if in_scope(p, u.id, tree)
        or u.id in tree.ancestors(p.unit_id)
        or tree.sees_everything(u.id)
    }
    wanted = seen if unit_id is None else seen & {unit_id}
    async with request.app[keys.STORE].transaction() as tx:
        found = await accounts.list_leaders(tx, wanted)
    return web.json_response(
        {
            "leaders": [
                {
                    "id": a.id,
                    "name": a.display_name,
                    "unit_id": a.unit_id,
                    "unit_name": tree.units[a.unit_id].name,
                }
                for a in found
            ]
        }
    )


# ---- sessions --------------------------------------------------------------------------------


@routes.get("/api/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    """Sessions of the caller's scope, newest first; filters: state, kind, limit."""
    p = require_official(request)
    store = request.app[keys.STORE]
    tree = store.tree
    state = request.query.get("state")
    kind = request.query.get("kind")
    if state is not None and state not in {s.value for s in SessionState}:
        raise ValidationError(f"state {state!r} unknown")
    if kind is not None and kind not in {k.value for k in SessionKind}:
        raise ValidationError(f"kind {kind!r} unknown")
    limit = query_int(request, "limit", lo=1, hi=500, default=100)
    assert p.unit_id is not None
    unit_ids = None if tree.sees_everything(p.unit_id) else tree.subtree(p.unit_id)
    async with store.transaction() as tx:
        rows = await sessions.list_sessions(
            tx,
            unit_ids=unit_ids,
            states=[SessionState(state)] if state else None,
            kinds=[SessionKind(kind)] if kind else None,
            limit=limit,
        )
    return web.json_response({"sessions": [session_json(s, with_participants=False) for s in rows]})


async def load_session(request: web.Request, action: Action) -> sessions.SessionInfo:
    """Read the session named in the path and check ``action`` on it (refusals audited)."""
    session_id = request.match_info["session_id"]
    if not session_id.isalnum() or len(session_id) > 32:
        raise NotFound(f"session {session_id!r} not found")
    async with request.app[keys.STORE].transaction() as tx:
        s = await sessions.get_session(tx, session_id)
    await authorize(request, action, s.target())
    return s


@routes.get("/api/sessions/{session_id}")
async def get_session(request: web.Request) -> web.Response:
    """One session with participants, events and recordings; the read is audit-logged.

    An invite holder reads what its join snapshot on ``/ws`` shows, and only while admitted.
    """
    s = await load_session(request, Action.VIEW_SESSION)
    p = principal_of(request)
    if p.kind is PrincipalKind.INVITE:
        return await _invitee_view(request, p, s)
    async with request.app[keys.STORE].transaction() as tx:
        events = await sessions.session_events(tx, s.id)
        recs = await sessions.recordings_of(tx, s.id)
        await accounts.audit(tx, p.ref, "view_session", "session", s.id, remote=remote_of(request))
    body = session_json(s)
    body["events"] = events
    ids = {r.path: r.id for r in recs}
    body["recordings"] = [
        {
            "id": r.id,
            "participant_id": r.participant_id,
            "segment": r.segment,
            "reason": r.reason,
            "derived_from": ids.get(r.derived_from) if r.derived_from else None,
            "codec": r.codec,
            "started_at": _iso(r.started_at),
            "ended_at": _iso(r.ended_at),
            "frames": r.frames,
            "bytes": r.bytes,
            "sha256": r.sha256,
            "state": r.state,
            "deleted": r.deleted,
            "url": f"/api/recordings/{r.id}/file",
        }
        for r in recs
    ]
    return web.json_response(body)


async def _invitee_view(
    request: web.Request, p: Principal, s: sessions.SessionInfo
) -> web.Response:
    """The session as its join snapshot shows it to an admitted invitee; 403 otherwise.

    No events (chat history included), no recordings, no lobby, no linked item: an invitee
    sees on ``/ws`` only what happens while it is in the room, and only once admitted.
    """
    mine = [q for q in s.participants if q.principal_ref == p.ref and q.left_at is None]
    store = request.app[keys.STORE]
    if not mine or mine[-1].admission is not AdmissionState.ADMITTED:
        state = mine[-1].admission.value if mine else "not joined"
        async with store.transaction() as tx:
            await accounts.audit(
                tx,
                p.ref,
                "view_session",
                "session",
                s.id,
                remote=remote_of(request),
                outcome="denied",
                detail={"reason": f"invitee not admitted ({state})"},
            )
        return error_response(
            403,
            "not_admitted",
            f"invite {p.id} is {state} in session {s.id}: it may read the session once admitted",
        )
    me = mine[-1]
    others = [
        q
        for q in s.participants
        if q.left_at is None
        and q.joined_at is not None
        and q.admission is AdmissionState.ADMITTED
        and (s.kind is not SessionKind.TRAINING or q.role is not ParticipantRole.VIEWER or q is me)
    ]
    async with store.transaction() as tx:
        await accounts.audit(tx, p.ref, "view_session", "session", s.id, remote=remote_of(request))
    brief = session_json(s, with_participants=False)
    return web.json_response(
        {
            "id": s.id,
            "kind": brief["kind"],
            "state": brief["state"],
            "unit_id": s.unit_id,
            "title": s.title,
            "category": s.category,
            "recorded": s.recorded,
            "created_at": brief["created_at"],
            "participant": _snapshot_participant(me),
            "participants": [_snapshot_participant(q) for q in others],
        }
    )


def _snapshot_participant(q: sessions.ParticipantInfo) -> dict[str, Any]:
    return {
        "id": q.id,
        "name": q.display_name,
        "role": q.role.value,
        "unit_id": q.unit_id,
        "admission": q.admission.value,
        "joined_at": _iso(q.joined_at),
    }


@routes.get("/api/recordings/{recording_id}/file")
async def recording_file(request: web.Request) -> web.StreamResponse:
    """Serve a recorded file with Range support; allowed by scope; every playback audited."""
    try:
        recording_id = int(request.match_info["recording_id"])
    except ValueError as exc:
        raise NotFound("recording not found") from exc
    store = request.app[keys.STORE]
    async with store.transaction() as tx:
        rec = await sessions.get_recording(tx, recording_id)
        s = await sessions.get_session(tx, rec.session_id)
    p = await authorize(request, Action.VIEW_RECORDING, s.target())
    if rec.deleted:
        raise NotFound(f"recording {recording_id} was deleted by the retention policy")
    root = request.app[keys.SETTINGS].recordings_dir.resolve()
    path = (root / rec.path).resolve()
    if root not in path.parents or not path.is_file():
        raise NotFound(f"recording {recording_id}: file missing")
    async with store.transaction() as tx:
        await accounts.audit(
            tx,
            p.ref,
            "playback",
            "recording",
            str(recording_id),
            remote=remote_of(request),
            detail={"session": s.id, "range": request.headers.get("Range", "")},
        )
    content_type = {".webm": "video/webm", ".mp4": "video/mp4"}.get(path.suffix, "video/x-matroska")
    return web.FileResponse(path, headers={"Content-Type": content_type})


# ---- invites ---------------------------------------------------------------------------------


INVITE_ROLES = (
    ParticipantRole.LAWYER,
    ParticipantRole.COUNSELLOR,
    ParticipantRole.SOCIAL_WORKER,
    ParticipantRole.OFFICIAL,
    ParticipantRole.PARTY,
    ParticipantRole.FIELD,
    ParticipantRole.VIEWER,
)


@routes.post("/api/sessions/{session_id}/invites")
async def create_invite(request: web.Request) -> web.Response:
    """Create a time-limited invite link bound to this session."""
    s = await load_session(request, Action.INVITE)
    p = require_official(request)
    data = await read_json(request)
    role = ParticipantRole(str(choice(data, "role", INVITE_ROLES)))
    name = text(data, "name", max_len=200)
    settings = request.app[keys.SETTINGS]
    ttl_s = integer(
        data,
        "ttl_s",
        lo=60,
        hi=30 * 86400,
        required=False,
        default=int(settings.invite_default_ttl_h * 3600),
    )
    unit_id = integer(data, "unit_id", lo=1, hi=2**31, required=False)
    if s.state in (SessionState.ENDED, SessionState.CANCELLED, SessionState.INTERRUPTED):
        raise ValidationError(f"session {s.id} is {s.state.value}; invites need an open session")
    assert ttl_s is not None
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
    return web.json_response(
        {
            "id": invite.id,
            "token": token,
            "url": f"/join#invite={token}",
            "expires_at": _iso(invite.expires_at),
            "role": role.value,
        },
        status=201,
    )


@routes.delete("/api/invites/{invite_id}")
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
    return web.json_response({"ok": True})


# ---- terminals and accounts (admin) ----------------------------------------------------------


@routes.post("/api/terminals")
async def create_terminal(request: web.Request) -> web.Response:
    """Create a community terminal; its device credential is shown once, in this answer."""
    data = await read_json(request)
    unit_id = integer(data, "unit_id", lo=1, hi=2**31)
    assert unit_id is not None
    p = await authorize(request, Action.MANAGE_TERMINALS, UnitTarget(unit_id))
    async with request.app[keys.STORE].transaction() as tx:
        terminal, credential = await accounts.create_terminal(tx, text(data, "name"), unit_id)
        await accounts.audit(
            tx, p.ref, "terminal_create", "terminal", str(terminal.id), remote=remote_of(request)
        )
    return web.json_response(
        {"id": terminal.id, "name": terminal.name, "unit_id": unit_id, "credential": credential},
        status=201,
    )


@routes.delete("/api/terminals/{terminal_id}")
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
    return web.json_response({"ok": True})


@routes.post("/api/accounts")
async def create_account(request: web.Request) -> web.Response:
    """Create an official's account in a unit of the admin's scope."""
    data = await read_json(request)
    unit_id = integer(data, "unit_id", lo=1, hi=2**31)
    assert unit_id is not None
    p = await authorize(request, Action.MANAGE_ACCOUNTS, UnitTarget(unit_id))
    roles_raw = data.get("roles")
    if not isinstance(roles_raw, list) or not roles_raw:
        raise ValidationError("field 'roles' must be a non-empty list")
    try:
        roles = [Role(r) for r in roles_raw]
    except ValueError as exc:
        raise ValidationError(f"unknown role in {roles_raw!r:.80}") from exc
    async with request.app[keys.STORE].transaction() as tx:
        account = await accounts.create_account(
            tx,
            text(data, "username", max_len=64),
            text(data, "name"),
            data.get("password", ""),
            unit_id,
            roles,
        )
        await accounts.audit(
            tx, p.ref, "account_create", "account", str(account.id), remote=remote_of(request)
        )
    return web.json_response(_account_json(account), status=201)


# ---- audit -----------------------------------------------------------------------------------


@routes.get("/api/audit")
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
    return web.json_response(
        {
            "entries": [
                {
                    "at": r.at.isoformat(),
                    "actor": r.actor,
                    "action": r.action,
                    "object_type": r.object_type,
                    "object_id": r.object_id,
                    "remote": r.remote,
                    "outcome": r.outcome,
                    "detail": r.detail,
                }
                for r in rows
            ]
        }
    )


# ---- announcements ---------------------------------------------------------------------------


@routes.post("/api/announcements")
async def publish_announcement(request: web.Request) -> web.Response:
    """Publish an announcement to the terminals of the caller's unit subtree."""
    p = require_official(request)
    data = await read_json(request)
    unit_id = integer(data, "unit_id", lo=1, hi=2**31, required=False, default=p.unit_id)
    assert unit_id is not None
    await authorize(request, Action.PUBLISH_ANNOUNCEMENT, UnitTarget(unit_id))
    hours = integer(data, "expires_in_h", lo=1, hi=24 * 365, required=False, default=72)
    assert hours is not None
    assert p.account_id is not None
    async with request.app[keys.STORE].transaction() as tx:
        ann = await sessions.create_announcement(
            tx,
            unit_id,
            text(data, "title"),
            text(data, "body", max_len=5000),
            p.account_id,
            utcnow() + dt.timedelta(hours=hours),
        )
        await accounts.audit(
            tx,
            p.ref,
            "announcement_publish",
            "announcement",
            str(ann.id),
            remote=remote_of(request),
        )
    hub = request.app.get(keys.HUB)
    if hub is not None:
        await hub.announce(ann)
    return web.json_response(ann.as_json(), status=201)


def _announcement_json(
    request: web.Request, p: Principal, rec: sessions.AnnouncementRecord
) -> dict[str, Any]:
    tree = request.app[keys.STORE].tree
    unit = tree.get(rec.info.unit_id)
    return rec.info.as_json() | {
        "unit_name": unit.name if unit else "",
        "author_id": rec.author_id,
        "author_name": rec.author_name,
        "withdrawn_at": rec.withdrawn_at.isoformat() if rec.withdrawn_at else None,
        "can_withdraw": rec.withdrawn_at is None
        and bool(policy.decide(p, Action.PUBLISH_ANNOUNCEMENT, UnitTarget(rec.info.unit_id), tree)),
    }


@routes.get("/api/announcements")
async def list_announcements(request: web.Request) -> web.Response:
    """Announcements published to units of the caller's scope, newest first (at most 100)."""
    p = require_official(request)
    tree = request.app[keys.STORE].tree
    assert p.unit_id is not None
    units = None if tree.sees_everything(p.unit_id) else sorted(tree.subtree(p.unit_id))
    async with request.app[keys.STORE].transaction() as tx:
        found = await sessions.list_announcements(tx, units)
        shown = await receipts.receipts(tx, [a.info.id for a in found])
        reach = {u for a in found for u in tree.subtree(a.info.unit_id)}
        terminals = await receipts.active_terminals(tx, reach)
    listed = []
    for a in found:
        body = _announcement_json(request, p, a)
        subtree = tree.subtree(a.info.unit_id)
        body["delivery"] = {
            "terminals": sum(1 for t in terminals if t.unit_id in subtree),
            "shown": [
                {
                    "terminal_id": r.terminal.id,
                    "name": r.terminal.name,
                    "unit_name": tree.units[r.terminal.unit_id].name,
                    "at": r.shown_at.isoformat(),
                }
                for r in shown
                if r.announcement_id == a.info.id
            ],
        }
        listed.append(body)
    return web.json_response({"announcements": listed})


@routes.post("/api/announcements/{announcement_id}/withdraw")
async def withdraw_announcement(request: web.Request) -> web.Response:
    """Withdraw an announcement: the terminals showing it drop it at once."""
    try:
        announcement_id = int(request.match_info["announcement_id"])
    except ValueError as exc:
        raise NotFound(
            f"announcement {request.match_info['announcement_id'][:20]!r} not found"
        ) from exc
    async with request.app[keys.STORE].transaction() as tx:
        ann = await sessions.get_announcement(tx, announcement_id)
    p = await authorize(request, Action.PUBLISH_ANNOUNCEMENT, UnitTarget(ann.unit_id))
    async with request.app[keys.STORE].transaction() as tx:
        rec = await sessions.withdraw_announcement(tx, announcement_id)
        await accounts.audit(
            tx,
            p.ref,
            "announcement_withdraw",
            "announcement",
            str(announcement_id),
            remote=remote_of(request),
        )
    hub = request.app.get(keys.HUB)
    if hub is not None and rec.withdrawn_at is not None:
        # terminals drop an announcement once it has expired: pushed again as expiring at the
        # moment of withdrawal, it leaves every kiosk showing it (the stored expiry stays)
        await hub.announce(dataclasses.replace(rec.info, expires_at=rec.withdrawn_at))
    return web.json_response(_announcement_json(request, p, rec))


# ---- duty roster -----------------------------------------------------------------------------


@routes.get("/api/duty")
async def duty_week(request: web.Request) -> web.Response:
    """The duty roster of ``days`` days (default 7) from ``from`` (default today, in China).

    One row per unit a ``to_leader`` visit may reach: every reception unit the caller sees
    (``/api/orgs``) and the units above it, as the visit looks for the leader on duty there
    first, then upwards. Each row carries the unit's own leaders (the only ones the roster may
    name), who is on duty per day and whether the caller may edit it (``MANAGE_DUTY``).
    Reception officers read it; leaders and administrators of the unit edit it.
    """
    p = require_official(request)
    raw = request.query.get("from")
    try:
        start = dt.date.fromisoformat(raw) if raw else local_date(utcnow())
    except ValueError as exc:
        raise ValidationError(f"query parameter 'from'={raw!r:.20}: YYYY-MM-DD expected") from exc
    count = query_int(request, "days", lo=1, hi=31, default=7)
    days = [start + dt.timedelta(days=n) for n in range(count)]
    tree = request.app[keys.STORE].tree
    assert p.unit_id is not None
    visible = [
        u
        for u in tree.units.values()
        if u.is_reception and (in_scope(p, u.id, tree) or u.id in tree.ancestors(p.unit_id))
    ]
    unit_ids: list[int] = []
    for u in sorted(visible, key=lambda u: u.id):
        for uid in (u.id, *tree.ancestors(u.id)):
            if uid not in unit_ids:
                unit_ids.append(uid)
    async with request.app[keys.STORE].transaction() as tx:
        roster = await sessions.duty_between(tx, days[0], days[-1] + dt.timedelta(days=1), unit_ids)
        leaders = await accounts.list_leaders(tx, unit_ids)
    names = {a.id: a.display_name for a in leaders}
    rows = []
    for uid in unit_ids:
        own = [a for a in leaders if a.unit_id == uid]
        if not own and not tree.units[uid].is_reception:
            continue  # nobody there could be on duty
        on_duty = {d.isoformat(): roster.get((d, uid)) for d in days}
        rows.append(
            {
                "unit_id": uid,
                "unit_name": tree.units[uid].name,
                "reception": tree.units[uid].is_reception,
                "can_edit": bool(policy.decide(p, Action.MANAGE_DUTY, UnitTarget(uid), tree)),
                "leaders": [{"id": a.id, "name": a.display_name} for a in own],
                "days": {
                    day: None if aid is None else {"account_id": aid, "name": names.get(aid, "")}
                    for day, aid in on_duty.items()
                },
            }
        )
    return web.json_response({"days": [d.isoformat() for d in days], "units": rows})


@routes.put("/api/duty/{day}")
async def set_duty(request: web.Request) -> web.Response:
    """Set the leader on duty (值班领导) of a unit for a day."""
    try:
        day = dt.date.fromisoformat(request.match_info["day"])
    except ValueError as exc:
        raise ValidationError(f"day {request.match_info['day']!r}: YYYY-MM-DD expected") from exc
    data = await read_json(request)
    unit_id = integer(data, "unit_id", lo=1, hi=2**31)
    account_id = integer(data, "account_id", lo=1, hi=2**31)
    assert unit_id is not None
    assert account_id is not None
    p = await authorize(request, Action.MANAGE_DUTY, UnitTarget(unit_id))
    async with request.app[keys.STORE].transaction() as tx:
        leader = await accounts.get_account(tx, account_id)
        if Role.LEADER not in leader.roles:
            raise ValidationError(f"account {account_id} is not a leader")
        if leader.unit_id != unit_id:
            # the roster names the unit's own leaders (DOMAIN.md): a visit routed to the
            # leader on duty is taken by that leader alone, so it must belong to the unit
            raise ValidationError(
                f"account {account_id} ({leader.username!r}) is a leader of unit "
                f"{leader.unit_id}, not of unit {unit_id}: the duty roster names the unit's "
                "own leaders"
            )
        await sessions.set_duty(tx, day, unit_id, account_id)
        await accounts.audit(
            tx,
            p.ref,
            "duty_set",
            "unit",
            str(unit_id),
            remote=remote_of(request),
            detail={"day": day.isoformat(), "account": account_id},
        )
    return web.json_response({"day": day.isoformat(), "unit_id": unit_id, "account_id": account_id})


def static_dir() -> Path:
    """Where the browser apps live."""
    return Path(__file__).resolve().parent / "static"


# ---- the kiosk's receipt (issue 16) ----------------------------------------------------------


#: deadlines that are the petitioner's windows, not the unit's duty: not printed as "next step"
_PETITIONER_WINDOWS = frozenset({"review_request", "rereview_request"})


@routes.get("/api/sessions/{session_id}/receipt")
async def visit_receipt(request: web.Request) -> web.Response:
    """The receipt of a visit, for the terminal that made it and for nobody else.

    The terminal may not read items (they hold personal data), yet the resident's receipt is
    for the item's lookup code; this route gives the terminal exactly what the receipt prints:
    the lookup code, the reference, the category and the next deadline of the item registered
    or linked during the call. Labels are keys (``category``, ``due.what``); the page
    translates them.
    """
    p = principal_of(request)
    session_id = request.match_info["session_id"]
    if not session_id.isalnum() or len(session_id) > 32:
        raise NotFound(f"session {session_id!r} not found")
    if p.kind is not enums.PrincipalKind.TERMINAL:
        raise AccessDenied("only the terminal that made a visit reads its receipt")
    store = request.app[keys.STORE]
    async with store.transaction() as tx:
        s = await sessions.get_session(tx, session_id)
        if s.kind is not SessionKind.VISIT or s.terminal_id != int(p.id):
            # the same answer as a session that does not exist: nothing to learn by guessing
            raise NotFound(f"session {session_id!r} not found")
        item = None
        if s.item_id is not None:
            with contextlib.suppress(NotFound):
                item = await items.get_item(tx, s.item_id)
        await accounts.audit(tx, p.ref, "view_receipt", "session", s.id, remote=remote_of(request))
    return web.json_response(
        {
            "session": s.id,
            "reference": s.id[:8].upper(),
            "state": s.state.value,
            "ended_at": _iso(s.ended_at),
            "category": (item.category if item and item.category else None) or s.category or None,
            "rating": s.rating,
            "lookup_code": lookup.format_code(item.lookup_code) if item else None,
            "item_state": item.state.value if item else None,
            "due": (
                {
                    "on": item.due_on.isoformat(),
                    "what": item.due_what,
                    "provisional": is_provisional(
                        request.app[keys.CALENDAR], item.due_on, item.due_what
                    ),
                }
                if item is not None
                and item.due_on is not None
                and item.due_what not in _PETITIONER_WINDOWS
                else None
            ),
        }
    )


# ---- trainings to watch (issue 16) -----------------------------------------------------------


@routes.get("/api/trainings")
async def open_trainings(request: web.Request) -> web.Response:
    """Live and upcoming trainings the caller may join, live first, newest first.

    For officials and community terminals alike: a training is broadcast down the tree
    (records.policy), so a terminal sees those of its community and the units above it. The
    pages list these instead of asking anyone to type a session id.
    """
    p = principal_of(request)
    if p.kind is enums.PrincipalKind.INVITE:
        raise AccessDenied("an invite is bound to its one session")
    store = request.app[keys.STORE]
    tree = store.tree
    async with store.transaction() as tx:
        rows = await sessions.list_sessions(
            tx,
            unit_ids=None,
            states=[SessionState.LIVE, SessionState.WAITING],
            kinds=[SessionKind.TRAINING],
            limit=200,
        )
    mine = [s for s in rows if policy.decide(p, Action.JOIN_SESSION, s.target(), tree).allowed]
    mine.sort(key=lambda s: (s.state is not SessionState.LIVE, -s.created_at.timestamp()))
    return web.json_response(
        {
            "trainings": [
                {
                    "id": s.id,
                    "reference": s.id[:8].upper(),
                    "title": s.title,
                    "state": s.state.value,
                    "unit_id": s.unit_id,
                    "unit_name": unit.name if (unit := tree.get(s.unit_id)) else None,
                    "created_at": _iso(s.created_at),
                    "started_at": _iso(s.started_at),
                }
                for s in mine
            ]
        }
    )
