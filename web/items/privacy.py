"""Revealing a petitioner's identity number or phone (audited), staff-recorded ratings."""

from __future__ import annotations

import logging
from typing import Literal

from aiohttp import web

from config.errors import ValidationError
from records import accounts, items
from records.policy import Action
from web import keys
from web.auth import remote_of
from web.input import choice, read_json, text
from web.items.common import (
    boolean,
    calendar_of,
    keyring_of,
    load_item,
)
from web.items.wire import item_json

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.post("/api/items/{item_id}/petitioners/{position:\\d{1,2}}/reveal")
async def reveal(request: web.Request) -> web.Response:
    """The full identity number or phone of one petitioner, for a stated reason.

    Every view masks both; this is the one way to see them whole, and every call is written
    to the audit log with who, which item and petitioner, which field, why and when. A
    reader needs the right to view the item (scope, confidentiality, recusal).
    """
    p, item = await load_item(request, Action.VIEW_ITEM)
    position = int(request.match_info["position"])
    data = await read_json(request)
    field_raw = choice(data, "field", ("id_number", "phone"))
    field: items.RevealField = "id_number" if field_raw == "id_number" else "phone"
    reason = text(data, "reason", max_len=200)
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
    return web.json_response(
        {"item_id": item.id, "position": position, "field": field, "value": value}
    )


@routes.post("/api/items/{item_id}/evaluation")
async def record_evaluation(request: web.Request) -> web.Response:
    """Record the rating of a petitioner without a phone, on their behalf (audited).

    Body: ``stage`` (acceptance | handling), ``satisfied``, ``note`` (how the petitioner
    gave it, e.g. by letter or in person). Refused when a petitioner has a phone: they rate
    with the lookup code themselves.
    """
    p, item = await load_item(request, Action.EDIT_ITEM, holder_only=True)
    data = await read_json(request)
    stage_raw = choice(data, "stage", ("acceptance", "handling"))
    stage: Literal["acceptance", "handling"] = (
        "acceptance" if stage_raw == "acceptance" else "handling"
    )
    satisfied = boolean(data, "satisfied", default=None)
    if satisfied is None:
        raise ValidationError("field 'satisfied' is required")
    note = text(data, "note", max_len=500)
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
    return web.json_response(item_json(updated, calendar_of(request)))
