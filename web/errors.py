"""Turning errors into HTTP answers: one JSON body ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from config import errors

logger = logging.getLogger(__name__)

STATUS: dict[type[errors.GatewayError], int] = {
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.InvalidTransition: 409,
    errors.TooLarge: 413,
    errors.ValidationError: 422,
    errors.AccessDenied: 403,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, code: str, message: str) -> web.Response:
    """A JSON error body with a stable code and a human message."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def status_of(exc: errors.GatewayError) -> int:
    """The HTTP status for a project error."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Project errors → their status; anything unexpected → 500 without a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return error_response(
                exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason
            )
        raise
    except errors.GatewayError as exc:
        status = status_of(exc)
        if status >= 500:
            logger.error("%s %s failed: %s", request.method, request.path, exc, exc_info=True)
            return error_response(status, exc.code, "internal error; see the server log")
        return error_response(status, exc.code, str(exc))
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return error_response(500, "internal_error", "internal error; see the server log")
