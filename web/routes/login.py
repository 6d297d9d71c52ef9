"""Signing in and out, and who the caller is."""

from __future__ import annotations

import datetime as dt
import logging

from aiohttp import web

from records import accounts
from web import keys, rest, wire
from web.auth import (
    COOKIE,
    CSRF,
    LOGIN_TOKEN,
    principal_of,
    remote_of,
)
from web.errors import error_response
from web.input import read_json
from web.rest import operation, reply

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.post("/api/login")
@operation(
    "Sign in; sets the pg_session cookie and returns the CSRF token",
    tag="auth",
    body=wire.LoginBody,
    response=wire.LoginAnswer,
    public=True,
)
async def login(request: web.Request) -> web.Response:
    """Check username and password; set the session cookie; throttle failures.

    The body is checked here rather than by :class:`web.wire.LoginBody`: a refusal names the
    limits of both fields at once and says nothing of which one was wrong.
    """
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
    response = reply(wire.LoginAnswer(account=wire.Account.of(account), csrf_token=csrf))
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


@routes.post("/api/logout")
@operation("Sign out", tag="auth", response=rest.Ok)
async def logout(request: web.Request) -> web.Response:
    """Revoke the login session and clear the cookie."""
    principal = principal_of(request)
    token = request.get(LOGIN_TOKEN)
    if token:
        async with request.app[keys.STORE].transaction() as tx:
            await accounts.close_login(tx, token)
            await accounts.audit(tx, principal.ref, "logout", remote=remote_of(request))
    response = reply(rest.Ok())
    response.del_cookie(COOKIE, path="/")
    return response


@routes.get("/api/me")
@operation("Who am I", tag="auth", response=wire.Me)
async def me(request: web.Request) -> web.Response:
    """Who am I: principal, unit, roles and (for cookie logins) the CSRF token."""
    p = principal_of(request)
    unit = request.app[keys.STORE].tree.get(p.unit_id) if p.unit_id is not None else None
    return reply(
        wire.Me(
            kind=p.kind,
            id=p.id,
            name=p.name,
            unit_id=p.unit_id,
            unit_name=unit.name if unit else None,
            roles=sorted(p.roles, key=lambda r: r.value),
            session_id=p.session_id,
            csrf_token=request.get(CSRF),
        )
    )
