"""Health and metrics: ``/healthz`` for probes, ``/metrics`` for Prometheus."""

from __future__ import annotations

import datetime as dt
import logging

from aiohttp import web

from config.errors import AccessDenied, GatewayError
from records.base import utcnow
from records.enums import (
    Role,
)
from web import keys
from web.auth import (
    require_official,
)
from web.metrics import CONTENT_TYPE

logger = logging.getLogger(__name__)

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


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
