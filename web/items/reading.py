"""Listing and reading items: the list, due lists, lookup by code, one item, history."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, Field

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
    UNIT_PARAM,
    UnitQuery,
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
from web.items.wire import DueItem, DueList, History, HistoryEntry, ItemDetail, Items, ItemSummary
from web.rest import ItemPath, operation, reply

#: a comma-separated list of enum values
CSV = Annotated[str | None, Field(min_length=1, max_length=300)]
DAY = Annotated[dt.date | None, Field()]


class ItemsQuery(BaseModel):
    """Filters of ``GET /api/items``."""

    unit_id: UNIT_PARAM = None
    state: Annotated[CSV, Field(description="comma-separated states")] = None
    type: Annotated[CSV, Field(description="comma-separated types")] = None
    channel: Annotated[CSV, Field(description="comma-separated channels")] = None
    from_: Annotated[DAY, Field(alias="from", description="registered on or after")] = None
    until: Annotated[DAY, Field(description="registered on or before")] = None
    urgent: Literal["true", "false"] | None = None
    limit: Annotated[int | None, Field(ge=1, le=500)] = None
    offset: Annotated[int | None, Field(ge=0, le=1_000_000)] = None


class DueQuery(UnitQuery):
    """``?unit_id=&within_days=``."""

    within_days: Annotated[int | None, Field(ge=0, le=366)] = None


class CodeQuery(BaseModel):
    """``?code=``: a lookup code."""

    code: Annotated[str, Field(max_length=40)]


logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/api/items")
@operation(
    "Items in the caller's scope, newest first (confidential only to handlers)",
    tag="items",
    response=Items,
    query=ItemsQuery,
)
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
    return reply(Items(items=[ItemSummary.of(i) for i in found]))


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
    return reply(DueList(today=local_today(), items=[DueItem.of(d) for d in shown]))


@routes.get("/api/items/due")
@operation(
    "Items whose unit deadline falls within N days", tag="items", response=DueList, query=DueQuery
)
async def due_soon(request: web.Request) -> web.Response:
    """Items whose unit deadline falls within ``within_days`` (default 7), per unit subtree."""
    p, units = await _due_units(request)
    within = query_int(request, "within_days", lo=0, hi=366, default=7)
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.list_due(tx, units, within, local_today())
    return await _due_response(request, p, found)


@routes.get("/api/items/overdue")
@operation("Items whose unit deadline has passed", tag="items", response=DueList, query=UnitQuery)
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
    # the units the item names, by name: the reader's /api/orgs holds only its own scope, and
    # an item registered above it (a reception centre's) would show a bare number
    named = {
        item.registering_unit_id,
        item.handling_unit_id,
        item.subject_unit_id,
        *item.co_handling_unit_ids,
    }
    return reply(
        ItemDetail(
            **ItemDetail.fields_of(item),
            backlog_case_id=case.id if case else None,
            unit_names={
                str(uid): unit_name(request, uid)
                for uid in sorted(u for u in named if u is not None)
            },
        )
    )


@routes.get("/api/items/lookup")
@operation(
    "An item by lookup code (audit-logged)", tag="items", response=ItemDetail, query=CodeQuery
)
async def lookup(request: web.Request) -> web.Response:
    """An item by its lookup code (officials linking a visit to an existing item)."""
    require_official(request)
    code = request.query.get("code", "")
    async with request.app[keys.STORE].transaction() as tx:
        item = await items.get_item_by_lookup_code(tx, code[:40])
    p = await authorize(request, Action.VIEW_ITEM, item_target(item))
    return await _read_item(request, p, item)


@routes.get("/api/items/{item_id}")
@operation("One item in full (audit-logged)", tag="items", response=ItemDetail, path=ItemPath)
async def get_item(request: web.Request) -> web.Response:
    """One item in full; the read is audit-logged."""
    p, item = await load_item(request, Action.VIEW_ITEM)
    return await _read_item(request, p, item)


@routes.get("/api/items/{item_id}/history")
@operation("The append-only history", tag="items", response=History, path=ItemPath)
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
        HistoryEntry.of(e, names.get(e.account_id) if e.account_id else None) for e in entries
    ]
    return reply(History(item_id=item.id, history=history))
