"""Listing and reading items: the list, due lists, lookup by code, one item, history."""

from __future__ import annotations

import datetime as dt
import logging

from aiohttp import web

from config.errors import ValidationError
from records import accounts, items
from records.deadlines import CHINA_TZ
from records.item_models import Channel, ItemType
from records.lifecycle import (
    ItemState,
)
from records.policy import Action
from records.principals import Principal
from web import keys
from web.auth import authorize, remote_of, require_official
from web.input import query_int
from web.items.common import (
    MAX_ID,
    calendar_of,
    item_target,
    load_item,
    local_today,
    query_date,
    query_enum,
    require_unit_scope,
    scope_units,
    unit_name,
    visible_items,
)
from web.items.wire import (
    due_json,
    history_json,
    item_json,
)

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/api/items")
async def list_items(request: web.Request) -> web.Response:
    """Items in the caller's scope (confidential ones only to handlers), newest first."""
    p = require_official(request)
    unit_id = query_int(request, "unit_id", lo=1, hi=MAX_ID, default=0) or None
    if unit_id is not None:
        await require_unit_scope(request, unit_id, "list_items")
    states = query_enum(request, "state", ItemState)
    types = query_enum(request, "type", ItemType)
    channels = query_enum(request, "channel", Channel)
    start = query_date(request, "from")
    end = query_date(request, "until")
    urgent_raw = request.query.get("urgent")
    if urgent_raw not in (None, "true", "false"):
        raise ValidationError(f"query parameter 'urgent'={urgent_raw!r:.20}: true or false")
    limit = query_int(request, "limit", lo=1, hi=500, default=100)
    offset = query_int(request, "offset", lo=0, hi=1_000_000, default=0)
    assert p.account_id is not None
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.list_items(
            tx,
            unit_ids=scope_units(request, p, unit_id),
            viewer_account_id=p.account_id,
            states=[ItemState(s) for s in states] if states else None,
            types=[ItemType(t) for t in types] if types else None,
            channels=[Channel(c) for c in channels] if channels else None,
            registered_from=_day_start(start) if start else None,
            registered_before=_day_start(end + dt.timedelta(days=1)) if end else None,
            urgent=None if urgent_raw is None else urgent_raw == "true",
            limit=limit,
            offset=offset,
        )
        await accounts.audit(
            tx,
            p.ref,
            "list_items",
            "item",
            "",
            remote=remote_of(request),
            detail={"count": len(found), "query": dict(request.query)},
        )
    return web.json_response(
        {"items": [item_json(i, calendar_of(request), full=False) for i in found]}
    )


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), CHINA_TZ)


async def _due_units(request: web.Request) -> tuple[Principal, list[int]]:
    p = require_official(request)
    unit_id = query_int(request, "unit_id", lo=1, hi=MAX_ID, default=0) or None
    if unit_id is not None:
        await require_unit_scope(request, unit_id, "due_list")
    units = scope_units(request, p, unit_id)
    return p, list(request.app[keys.STORE].tree.units) if units is None else units


async def _due_response(
    request: web.Request, p: Principal, found: list[items.DueItem]
) -> web.Response:
    confidential = [d.item_id for d in found if d.confidential]
    visible = await visible_items(request, p, confidential) if confidential else set()
    shown = [d for d in found if not d.confidential or d.item_id in visible]
    return web.json_response(
        {
            "today": local_today().isoformat(),
            "items": [due_json(d, calendar_of(request)) for d in shown],
        }
    )


@routes.get("/api/items/due")
async def due_soon(request: web.Request) -> web.Response:
    """Items whose unit deadline falls within ``within_days`` (default 7), per unit subtree."""
    p, units = await _due_units(request)
    within = query_int(request, "within_days", lo=0, hi=366, default=7)
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.list_due(tx, units, within, local_today())
    return await _due_response(request, p, found)


@routes.get("/api/items/overdue")
async def overdue(request: web.Request) -> web.Response:
    """Items whose unit deadline has passed, most overdue first, per unit subtree."""
    p, units = await _due_units(request)
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.list_overdue(tx, units, local_today())
    return await _due_response(request, p, found)


async def _read_item(request: web.Request, p: Principal, item: items.Item) -> web.Response:
    async with request.app[keys.STORE].transaction() as tx:
        case = await items.backlog_case_of_item(tx, item.id)
        await accounts.audit(tx, p.ref, "view_item", "item", item.id, remote=remote_of(request))
    body = item_json(item, calendar_of(request))
    body["backlog_case_id"] = case.id if case else None
    # the units the item names, by name: the reader's /api/orgs holds only its own scope, and
    # an item registered above it (a reception centre's) would show a bare number
    named = {
        item.registering_unit_id,
        item.handling_unit_id,
        item.subject_unit_id,
        *item.co_handling_unit_ids,
    }
    body["unit_names"] = {
        str(uid): unit_name(request, uid) for uid in sorted(u for u in named if u is not None)
    }
    return web.json_response(body)


@routes.get("/api/items/lookup")
async def lookup(request: web.Request) -> web.Response:
    """An item by its lookup code (officials linking a visit to an existing item)."""
    require_official(request)
    code = request.query.get("code", "")
    async with request.app[keys.STORE].transaction() as tx:
        item = await items.get_item_by_lookup_code(tx, code[:40])
    p = await authorize(request, Action.VIEW_ITEM, item_target(item))
    return await _read_item(request, p, item)


@routes.get("/api/items/{item_id}")
async def get_item(request: web.Request) -> web.Response:
    """One item in full; the read is audit-logged."""
    p, item = await load_item(request, Action.VIEW_ITEM)
    return await _read_item(request, p, item)


@routes.get("/api/items/{item_id}/history")
async def history(request: web.Request) -> web.Response:
    """The append-only history of an item; audit-logged."""
    p, item = await load_item(request, Action.VIEW_ITEM)
    async with request.app[keys.STORE].transaction() as tx:
        entries = await items.item_history(tx, item.id)
        names = await accounts.display_names(
            tx, {e.account_id for e in entries if e.account_id is not None}
        )
        await accounts.audit(
            tx, p.ref, "view_item_history", "item", item.id, remote=remote_of(request)
        )
    history = [
        history_json(e) | {"account_name": names.get(e.account_id) if e.account_id else None}
        for e in entries
    ]
    return web.json_response({"item_id": item.id, "history": history})
