"""Reading and validating JSON request bodies: every value is checked before use."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from config.errors import TooLarge, ValidationError
from records.text import TooDeep, find_unstorable, unstorable_char

MAX_BODY = 256 * 1024


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object of storable text, or ValidationError (413: TooLarge).

    Every string of the body, keys included, must be valid Unicode without NUL
    (:mod:`records.text`): PostgreSQL and UTF-8 could not store it, SQLite would.
    """
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise TooLarge(f"JSON body of {request.content_length} bytes exceeds {MAX_BODY}")
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise TooLarge(f"JSON body of {len(raw)} bytes exceeds {MAX_BODY}")
    try:
        data = json.loads(raw or b"{}")
    except RecursionError as exc:
        raise ValidationError("body is not valid JSON: nested too deeply") from exc
    except ValueError as exc:
        raise ValidationError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValidationError(f"body must be a JSON object, got {type(data).__name__}")
    try:
        bad = find_unstorable(data)
    except TooDeep as exc:
        raise ValidationError(f"body: {exc}") from exc
    if bad is not None:
        raise ValidationError(f"body: field {bad}")
    return data


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def text_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a path or query string holding text no database could store (NUL, surrogates).

    The one check for every query parameter and path segment of every route; JSON bodies are
    checked by :func:`read_json`, upload file names where they are read.
    """
    bad = unstorable_char(request.path, "the path")
    for key, value in request.query.items():
        if bad is not None:
            break
        bad = unstorable_char(key, "a query parameter name") or unstorable_char(
            value, f"query parameter {key!r}"
        )
    if bad is not None:
        raise ValidationError(str(bad))
    return await handler(request)


def text(
    data: dict[str, Any], key: str, *, max_len: int = 200, required: bool = True, default: str = ""
) -> str:
    """A string field of 1..max_len characters (or ``default`` when optional and absent)."""
    value = data.get(key)
    if value is None:
        if required:
            raise ValidationError(f"field {key!r} is required")
        return default
    if not isinstance(value, str):
        raise ValidationError(f"field {key!r} must be a string, got {value!r:.40}")
    value = value.strip()
    if required and not value:
        raise ValidationError(f"field {key!r} must not be empty")
    if len(value) > max_len:
        raise ValidationError(f"field {key!r} is longer than {max_len} characters")
    return value


def integer(
    data: dict[str, Any],
    key: str,
    *,
    lo: int,
    hi: int,
    required: bool = True,
    default: int | None = None,
) -> int | None:
    """An integer field within ``lo..hi``."""
    value = data.get(key)
    if value is None:
        if required:
            raise ValidationError(f"field {key!r} is required")
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValidationError(f"field {key!r} must be a whole number {lo}..{hi}, got {value!r:.40}")
    return value


def choice(data: dict[str, Any], key: str, options: Any, *, required: bool = True) -> str | None:
    """A string field that must be one of ``options`` (an iterable of strings or a StrEnum)."""
    allowed = [getattr(o, "value", o) for o in options]
    value = data.get(key)
    if value is None and not required:
        return None
    if value not in allowed:
        raise ValidationError(f"field {key!r} must be one of {allowed}, got {value!r:.40}")
    return str(value)


def query_int(request: web.Request, key: str, *, lo: int, hi: int, default: int) -> int:
    """An integer query parameter within bounds."""
    raw = request.query.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValidationError(
            f"query parameter {key!r}={raw!r:.40}: whole number expected"
        ) from exc
    if not lo <= value <= hi:
        raise ValidationError(f"query parameter {key!r}={value}: expected {lo}..{hi}")
    return value
