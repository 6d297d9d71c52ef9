"""Authentication of HTTP requests, CSRF protection and per-address rate limits.

A request is authenticated by one of:

- the official's login cookie ``pg_session`` (HttpOnly, SameSite=Strict, Secure on HTTPS);
  state-changing requests then also need the header ``X-CSRF-Token``;
- ``Authorization: Bearer pgt_…``: a community terminal's device credential;
- ``Authorization: Bearer pgi_…``: an invite token (third parties, field units).

Everything is refused without authentication except the paths in :data:`PUBLIC_PREFIXES`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from config.errors import AccessDenied
from config.ratelimit import Buckets
from records import accounts
from records.policy import Action, Target, decide
from records.principals import Principal
from web import keys
from web.errors import error_response

COOKIE = "pg_session"
CSRF_HEADER = "X-CSRF-Token"
PUBLIC_PREFIXES = (
    "/healthz",
    "/login",
    "/api/login",
    "/static/",
    "/lookup",
    "/api/public/",
    "/api/openapi.json",  # the API's shape, no data
    "/kiosk",
    "/join",
    "/field",
    "/favicon.ico",
    "/ws",  # authenticates itself (cookie or first message)
)
PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")
CSRF = web.RequestKey("csrf", str)
LOGIN_TOKEN = web.RequestKey("login_token", str)
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def remote_of(request: web.Request) -> str:
    """The client address (the proxy's X-Forwarded-For is trusted only behind a proxy)."""
    settings = request.app[keys.SETTINGS]
    if settings.behind_https_proxy:
        fwd = request.headers.get("X-Forwarded-For", "")
        if fwd:
            return fwd.split(",")[0].strip()[:64]
    return (request.remote or "")[:64]


async def resolve(request: web.Request) -> Principal | None:
    """The principal behind a request, or None; sets request[CSRF] for cookie logins."""
    store = request.app[keys.STORE]
    authz = request.headers.get("Authorization", "")
    if authz.startswith("Bearer "):
        token = authz[7:].strip()
        async with store.transaction() as tx:
            if token.startswith(accounts.TERMINAL_PREFIX):
                terminal = await accounts.resolve_terminal(tx, token)
                return terminal.principal() if terminal else None
            if token.startswith(accounts.INVITE_PREFIX):
                invite = await accounts.resolve_invite(
                    tx, request.app[keys.SETTINGS].secret_key, token
                )
                return invite.principal() if invite else None
        return None
    cookie = request.cookies.get(COOKIE)
    if cookie:
        async with store.transaction() as tx:
            login = await accounts.resolve_login(tx, cookie)
        if login is not None:
            request[CSRF] = login.csrf_token
            request[LOGIN_TOKEN] = cookie
            return login.account.principal()
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the principal; refuse unauthenticated requests to non-public paths."""
    path = request.path
    public = path == "/" or path.startswith(PUBLIC_PREFIXES)
    principal = await resolve(request)
    request[PRINCIPAL] = principal
    if principal is None and not public:
        if request.method == "GET" and not path.startswith("/api/") and path != "/metrics":
            raise web.HTTPFound(login_url(request.rel_url.path_qs))
        return error_response(401, "unauthenticated", "sign in first")
    if (
        principal is not None
        and request.method in UNSAFE
        and CSRF in request
        and request.headers.get(CSRF_HEADER) != request[CSRF]
    ):
        return error_response(403, "csrf", f"missing or wrong {CSRF_HEADER} header")
    if request.method in UNSAFE and request.body_exists:
        ctype = request.content_type
        if ctype not in ("application/json",) and not path.startswith("/api/upload"):
            return error_response(415, "unsupported_media_type", "send application/json")
    return await handler(request)


def same_origin_path(target: str) -> str | None:
    r"""``target`` if it is a path of this site (``/x``), else None.

    Not ``//host`` (scheme-relative), not ``/\host`` (browsers read a backslash as a slash),
    nothing with a scheme, a backslash or a control character (URL parsers drop tabs and
    newlines, so ``/<tab>/host`` is ``//host``).
    """
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    return target


def login_url(next_path: str) -> str:
    """The login page, returning to ``next_path`` afterwards if it is a same-origin path."""
    safe = same_origin_path(next_path)
    return "/login" if safe is None else f"/login?next={quote(safe, safe='')}"


def principal_of(request: web.Request) -> Principal:
    """The authenticated principal (the middleware guarantees one on non-public paths)."""
    principal: Principal | None = request.get(PRINCIPAL)
    if principal is None:
        raise web.HTTPUnauthorized(reason="sign in first")
    return principal


async def authorize(request: web.Request, action: Action, target: Target) -> Principal:
    """Ask the policy; on refusal write the audit log and raise AccessDenied."""
    principal = principal_of(request)
    store = request.app[keys.STORE]
    decision = decide(principal, action, target, store.tree)
    if not decision.allowed:
        object_id = str(getattr(target, "id", getattr(target, "unit_id", "")))
        async with store.transaction() as tx:
            await accounts.audit(
                tx,
                principal.ref,
                action.value,
                type(target).__name__.removesuffix("Target").lower(),
                object_id,
                remote=remote_of(request),
                outcome="denied",
                detail={"reason": decision.reason},
            )
        raise AccessDenied(f"{action.value} refused: {decision.reason}")
    return principal


def rate_limit_middleware(limiter: Buckets) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuse with 429 when a client address exceeds its request rate on /api/.

    ``limiter``: token buckets per address (``config.ratelimit``), one token a request.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/") and not limiter.take(remote_of(request)):
            return error_response(429, "rate_limited", "too many requests; slow down")
        return await handler(request)

    return middleware


def require_official(request: web.Request) -> Principal:
    """The principal, which must be an official's account."""
    principal = principal_of(request)
    if principal.account_id is None:
        raise AccessDenied(f"{principal.kind.value}s cannot use this endpoint")
    return principal
