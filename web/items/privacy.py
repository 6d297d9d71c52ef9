"""Revealing a petitioner's identity number or phone (audited), staff-recorded ratings."""

from __future__ import annotations

import logging
from typing import Annotated, get_args

from aiohttp import web
from pydantic import Field

from config.errors import ValidationError
from records import accounts, items
from records.policy import Action
from web import keys
from web.auth import remote_of
from web.input import read_json
from web.items.common import (
    Stage,
    calendar_of,
    keyring_of,
    load_item,
)
from web.items.wire import Item, Revealed
from web.rest import Bool, Choice, ItemPath, Request, Text, operation, parse_body, reply

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


class RevealBody(Request):
    """Which field, and why (at least two characters)."""

    field: Annotated[items.RevealField, Choice(get_args(items.RevealField))]
    reason: Annotated[str, Text(200)]


class PetitionerPath(ItemPath):
    """``{item_id}`` and the petitioner's ``{position}``."""

    position: Annotated[int, Field(ge=0, le=99)]


class EvaluationBody(Request):
    """A rating recorded by staff; ``note`` says how the petitioner gave it."""

    stage: Annotated[Stage, Choice(get_args(Stage))]
    satisfied: Bool
    note: Annotated[str, Text(500)]


@routes.post("/api/items/{item_id}/petitioners/{position:\\d{1,2}}/reveal")
@operation(
    "The full identity number or phone of one petitioner (masked everywhere else); audited "
    "with the reason",
    tag="items",
    body=RevealBody,
    response=Revealed,
    path=PetitionerPath,
)
async def reveal(request: web.Request) -> web.Response:
    """The full identity number or phone of one petitioner, for a stated reason.

    Every view masks both; this is the one way to see them whole, and every call is written
    to the audit log with who, which item and petitioner, which field, why and when. A
    reader needs the right to view the item (scope, confidentiality, recusal).
    """
    p, item = await load_item(request, Action.VIEW_ITEM)
    position = int(request.match_info["position"])
    body = parse_body(RevealBody, await read_json(request))
    field, reason = body.field, body.reason
    if len(reason.strip()) < 2:
        raise ValidationError("field 'reason': say why the full value is needed")
    async with request.app[keys.STORE].transaction() as tx:
        value = await items.reveal_petitioner(tx, keyring_of(request), item.id, position, field)
        await accounts.audit(
            tx,
            p.ref,
            "reveal_petitioner",
            "item",
            item.id,
            remote=remote_of(request),
            detail={"position": position, "field": field, "reason": reason},
        )
    logger.info("%s revealed %s of petitioner %d of item %s", p.ref, field, position, item.id)
    return reply(Revealed(item_id=item.id, position=position, field=field, value=value))


@routes.post("/api/items/{item_id}/evaluation")
@operation(
    "Record the rating of a petitioner without a phone on their behalf (audited)",
    tag="items",
    body=EvaluationBody,
    response=Item,
    path=ItemPath,
)
async def record_evaluation(request: web.Request) -> web.Response:
    """Record the rating of a petitioner without a phone, on their behalf (audited).

    Body: ``stage`` (acceptance | handling), ``satisfied``, ``note`` (how the petitioner
    gave it, e.g. by letter or in person). Refused when a petitioner has a phone: they rate
    with the lookup code themselves.
    """
    p, item = await load_item(request, Action.EDIT_ITEM, holder_only=True)
    body = parse_body(EvaluationBody, await read_json(request))
    stage, satisfied, note = body.stage, body.satisfied, body.note
    if satisfied is None:
        raise ValidationError("field 'satisfied' is required")
    assert p.account_id is not None  # EDIT_ITEM is for officials only
    async with request.app[keys.STORE].transaction() as tx:
        updated = await items.record_evaluation(
            tx,
            calendar_of(request),
            item.id,
            account_id=p.account_id,
            stage=stage,
            satisfied=satisfied,
            note=note,
        )
        await accounts.audit(
            tx,
            p.ref,
            "record_evaluation",
            "item",
            item.id,
            remote=remote_of(request),
            detail={"stage": stage, "satisfied": satisfied, "recorded_by_staff": True},
        )
    return reply(Item.of(updated, calendar_of(request)))
