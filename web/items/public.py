"""Public routes for the petitioner: progress by lookup code, evaluation (no login)."""

from __future__ import annotations

import logging
import re
from typing import Annotated, get_args

from aiohttp import web
from pydantic import BaseModel, Field

from config.errors import NotFound, ValidationError
from records import accounts, items
from records.lookup import normalise
from web import keys
from web.auth import remote_of
from web.errors import error_response
from web.input import read_json
from web.items.common import (
    Stage,
    calendar_of,
)
from web.items.wire import PublicProgress
from web.rest import Bool, Choice, Request, Text, operation, parse_body, reply

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


_EVAL_FAILED = "the lookup code and the phone digits do not match an item"


class CodeQuery(BaseModel):
    """``?code=``: a lookup code."""

    code: Annotated[str, Field(max_length=40)]


class EvaluateBody(Request):
    """The lookup code, the last four digits of the phone, the stage and the rating."""

    code: Annotated[str, Text(40)]
    phone_last4: Annotated[str, Text(8)]
    stage: Annotated[Stage, Choice(get_args(Stage))]
    satisfied: Bool


@routes.get("/api/public/progress")
@operation(
    "Progress by lookup code: states and dates, no personal data",
    tag="public",
    response=PublicProgress,
    query=CodeQuery,
    public=True,
)
async def public_progress(request: web.Request) -> web.Response:
    """Progress by lookup code, for the petitioner: states and dates, no personal data."""
    code = request.query.get("code", "")[:40]
    async with request.app[keys.STORE].transaction() as tx:
        pp = await items.public_progress(tx, code)
    return reply(PublicProgress.of(pp, calendar_of(request)))


@routes.post("/api/public/evaluate")
@operation(
    "Rate acceptance or handling (code + last 4 phone digits); a wrong code and wrong digits "
    "give the same 404",
    tag="public",
    body=EvaluateBody,
    response=PublicProgress,
    public=True,
)
async def public_evaluate(request: web.Request) -> web.Response:
    """The petitioner rates acceptance or handling with the code and 4 phone digits.

    A wrong code and wrong digits give the same 404; repeated failures for one code or from
    one address are refused for a while (429) whatever the input.
    """
    body = parse_body(EvaluateBody, await read_json(request))
    raw_code, digits, stage, satisfied = body.code, body.phone_last4, body.stage, body.satisfied
    if satisfied is None:
        raise ValidationError("field 'satisfied' is required")
    remote = remote_of(request)
    throttle = request.app[keys.THROTTLE]
    key_code = "eval-code:" + re.sub(r"[\s\-]", "", raw_code).upper()
    key_addr = f"eval-addr:{remote}"
    if await throttle.locked(key_code, key_addr):
        return error_response(429, "throttled", "too many failed attempts; try again later")
    store = request.app[keys.STORE]
    try:
        code = normalise(raw_code)
        async with store.transaction() as tx:
            pp = await items.evaluate(
                tx, calendar_of(request), code, digits, stage=stage, satisfied=satisfied
            )
            item = await items.get_item_by_lookup_code(tx, code)
            await accounts.audit(
                tx,
                "public",
                "evaluate",
                "item",
                item.id,
                remote=remote,
                detail={"stage": stage, "satisfied": satisfied},
            )
    except NotFound:
        failed = True
    except ValidationError as exc:
        if "lookup code" not in str(exc):
            raise  # the stage is not open yet: the caller proved the code and the digits
        failed = True
    else:
        failed = False
    if failed:
        await throttle.fail(key_code, key_addr)
        async with store.transaction() as tx:
            await accounts.audit(
                tx, "public", "evaluate", "item", "", remote=remote, outcome="failed"
            )
        return error_response(404, "not_found", _EVAL_FAILED)
    return reply(PublicProgress.of(pp, calendar_of(request)))
