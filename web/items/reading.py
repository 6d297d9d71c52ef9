"""Listing and reading items: the list, due lists, lookup by code, one item, history."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import logging
import re
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from config.errors import ValidationError
from records import accounts, items
from records.calendar import HolidayCalendar
from records.deadlines import CHINA_TZ
from records.item_models import Channel, ItemType
from records.item_periods import is_provisional
from records.keyring import mask_phone
from records.lifecycle import (
    STATE_LABELS_ZH,
    ItemState,
)
from records.lookup import format_code
from records.policy import Action, in_scope
from records.principals import Principal
from web import keys
from web.auth import authorize, remote_of, require_official
from web.input import query_int
from web.items.common import (
    MAX_ID,
    UNIT_PARAM,
    UnitQuery,
    calendar_of,
    iso,
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
from web.items.wire import DueItem, DueList, History, HistoryEntry, Item, Items, ItemSummary
from web.rest import Date, DateTime, ItemPath, Wire, operation, reply

#: a comma-separated list of enum values
CSV = Annotated[str | None, Field(min_length=1, max_length=300)]
DAY = Annotated[dt.date | None, Field()]


class ListQuery(BaseModel):
    """The filters and the order of ``GET /api/items`` and its CSV."""

    unit_id: UNIT_PARAM = None
    state: Annotated[CSV, Field(description="comma-separated states")] = None
    type: Annotated[CSV, Field(description="comma-separated types")] = None
    channel: Annotated[CSV, Field(description="comma-separated channels")] = None
    category: Annotated[CSV, Field(description="comma-separated categories")] = None
    from_: Annotated[DAY, Field(alias="from", description="registered on or after")] = None
    until: Annotated[DAY, Field(description="registered on or before")] = None
    urgent: Literal["true", "false"] | None = None
    handler: Annotated[
        str | None, Field(pattern=r"^(me|\d{1,10})$", description="me or an account id")
    ] = None
    due_before: Annotated[DAY, Field(description="current deadline before this day")] = None
    overdue: Annotated[
        Literal["true", "false"] | None, Field(description="current deadline before today")
    ] = None
    sort: Annotated[
        Literal["received", "due", "state"] | None, Field(description="default received")
    ] = None
    order: Annotated[Literal["desc", "asc"] | None, Field(description="default desc")] = None


class ItemsQuery(ListQuery):
    """Filters, order and page of ``GET /api/items``."""

    limit: Annotated[int | None, Field(ge=1, le=500)] = None
    offset: Annotated[int | None, Field(ge=0, le=1_000_000)] = None


class DueQuery(UnitQuery):
    """``?unit_id=&within_days=``."""

    within_days: Annotated[int | None, Field(ge=0, le=366)] = None


class CodeQuery(BaseModel):
    """``?code=``: a lookup code."""

    code: Annotated[str, Field(max_length=40)]


class Handler(Wire):
    """An official who may be named as a handler."""

    id: int
    name: str
    unit_id: int
    unit_name: str


class Handlers(Wire):
    """``GET /api/handlers``."""

    handlers: list[Handler]


class Counts(Wire):
    """``GET /api/items/counts``: the navigation's badges."""

    overdue: int
    due_soon: int
    to_acknowledge: int
    backlog_missing: int


class ItemSupervision(Wire):
    """A supervision (督办) of the item, as its page shows it."""

    id: int
    unit_id: int
    unit_name: str
    reason: str
    due_on: Date | None
    at: DateTime


class ItemDetail(Item):
    """One item as its page reads it: its backlog case, supervisions and unit names."""

    backlog_case_id: int | None
    may_supervise: bool
    supervisions: list[ItemSupervision]
    unit_names: Annotated[
        dict[str, str], Field(description="unit id → name, for the units the item names")
    ]


logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


_CATEGORY = re.compile(r"^[^,]{1,64}$")


def _list_query(request: web.Request, p: Principal) -> dict[str, Any]:
    """The filters and the order of ``GET /api/items`` and its CSV, as ``list_items`` takes them.

    ``state``, ``type``, ``channel``, ``category`` (comma-separated), ``unit_id``, ``from``,
    ``until`` (registration days, inclusive), ``urgent``, ``handler`` (``me`` or an account
    id: items it handles), ``due_before`` (a day), ``overdue=true`` (deadline before today),
    ``sort`` (``received`` | ``due`` | ``state``), ``order`` (``desc`` | ``asc``).
    """
    q = request.query
    states = query_enum(request, "state", ItemState)
    types = query_enum(request, "type", ItemType)
    channels = query_enum(request, "channel", Channel)
    categories = [c for c in q.get("category", "").split(",") if c] or None
    if categories and not all(_CATEGORY.match(c) for c in categories):
        raise ValidationError(
            f"query parameter 'category'={q['category']!r:.40}: categories of ≤ 64 characters"
        )
    start = query_date(request, "from")
    end = query_date(request, "until")
    flags = {}
    for key in ("urgent", "overdue"):
        raw = q.get(key)
        if raw not in (None, "", "true", "false"):
            raise ValidationError(f"query parameter {key!r}={raw!r:.20}: true or false")
        flags[key] = None if raw in (None, "") else raw == "true"
    handler_raw = q.get("handler", "")
    handler = (
        p.account_id
        if handler_raw == "me"
        else query_int(request, "handler", lo=1, hi=MAX_ID, default=0) or None
        if handler_raw
        else None
    )
    due_before = query_date(request, "due_before")
    if flags["overdue"]:
        today = local_today()
        due_before = today if due_before is None else min(due_before, today)
    sort = q.get("sort", "received")
    if sort not in items.SORTS:
        raise ValidationError(f"query parameter 'sort'={sort!r:.20}: one of {items.SORTS}")
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ValidationError(f"query parameter 'order'={order!r:.20}: asc or desc")
    return {
        "states": [ItemState(s) for s in states] if states else None,
        "types": [ItemType(t) for t in types] if types else None,
        "channels": [Channel(c) for c in channels] if channels else None,
        "categories": categories,
        "registered_from": _day_start(start) if start else None,
        "registered_before": _day_start(end + dt.timedelta(days=1)) if end else None,
        "urgent": flags["urgent"],
        "handler_account_id": handler,
        "due_before": due_before,
        "sort": sort,
        "descending": order == "desc",
    }


async def _listed(
    request: web.Request, what: str, *, limit: int, offset: int = 0
) -> tuple[Principal, list[items.Item]]:
    """The items a listing shows (scope, confidentiality, the query's filters); audited."""
    p = require_official(request)
    unit_id = query_int(request, "unit_id", lo=1, hi=MAX_ID, default=0) or None
    if unit_id is not None:
        await require_unit_scope(request, unit_id, what)
    query = _list_query(request, p)
    assert p.account_id is not None
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.list_items(
            tx,
            unit_ids=scope_units(request, p, unit_id),
            viewer_account_id=p.account_id,
            limit=limit,
            offset=offset,
            **query,
        )
        await accounts.audit(
            tx,
            p.ref,
            what,
            "item",
            "",
            remote=remote_of(request),
            detail={"count": len(found), "query": dict(request.query)},
        )
    return p, found


@routes.get("/api/items")
@operation(
    "Items in the caller's scope, filtered and sorted (confidential only to handlers)",
    tag="items",
    response=Items,
    query=ItemsQuery,
)
async def list_items(request: web.Request) -> web.Response:
    """Items in the caller's scope (confidential ones only to handlers), filtered and sorted.

    The filters and the order are :func:`_list_query`'s; ``limit`` (≤ 500), ``offset``.
    """
    limit = query_int(request, "limit", lo=1, hi=500, default=100)
    offset = query_int(request, "offset", lo=0, hi=1_000_000, default=0)
    _p, found = await _listed(request, "list_items", limit=limit, offset=offset)
    calendar = calendar_of(request)
    return reply(Items(items=[ItemSummary.of(i, calendar) for i in found]))


#: the most rows one CSV export holds (the list's records allow up to ``items.MAX_ROWS``)
CSV_ROWS = 2000
#: the columns of the CSV export (Chinese: the bureau's spreadsheets are)
_CSV_HEAD = (
    "查询码", "状态", "渠道", "类别", "类型", "登记时间", "登记单位", "办理单位", "当前期限",
    "期限类型", "已超期", "信访人", "联系电话", "证件号码", "诉求",
)  # fmt: skip
_CHANNEL_ZH = {
    "letter": "来信", "visit": "来访", "online": "网上信访", "phone": "电话", "fax": "传真",
    "video": "视频信访",
}  # fmt: skip
_TYPE_ZH = {"suggestion": "建议意见", "accusation": "检举控告", "complaint": "申诉求决"}
_CATEGORY_ZH = {
    "housing": "房屋与拆迁", "labour": "劳动与社保", "land": "土地与规划",
    "welfare": "民政与救助", "law": "政法与治安", "other": "其他事项",
}  # fmt: skip
_DUE_ZH = {
    "route": "转送交办期限", "object": "异议期限", "accept": "受理告知期限",
    "opinion": "办理期限", "review_request": "申请复查期限", "review_opinion": "复查期限",
    "rereview_request": "申请复核期限", "rereview_opinion": "复核期限",
    "assignment_report": "交办报告期限",
}  # fmt: skip


def _mask_name(name: str) -> str:
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""


def _provisional(calendar: HolidayCalendar, i: items.Item) -> str:
    """（暂定） after a due date in a year without an official holiday notice."""
    provisional = i.due_on is not None and is_provisional(calendar, i.due_on, i.due_what)
    return "（暂定）" if provisional else ""


def _csv(request: web.Request, found: list[items.Item], truncated: bool) -> str:
    """The rows as CSV text; identities masked as in every list (the item page reveals).

    A due date in a year without an official holiday notice is marked （暂定）.
    """
    calendar = calendar_of(request)
    today = local_today()
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(_CSV_HEAD)
    for i in found:
        people = [] if i.anonymous else list(i.petitioners)
        w.writerow(
            [
                format_code(i.lookup_code),
                STATE_LABELS_ZH[i.state],
                _CHANNEL_ZH.get(i.channel.value, i.channel.value),
                _CATEGORY_ZH.get(i.category or "", i.category or ""),
                _TYPE_ZH.get(i.type.value, i.type.value),
                i.registered_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M"),
                unit_name(request, i.registering_unit_id),
                unit_name(request, i.handling_unit_id),
                (iso(i.due_on) or "") + _provisional(calendar, i),
                _DUE_ZH.get(i.due_what or "", i.due_what or ""),
                "是" if i.due_on is not None and i.due_on < today else "",
                "、".join(_mask_name(pt.name) for pt in people) or ("匿名" if i.anonymous else ""),
                "、".join(mask_phone(pt.phone) or "" for pt in people if pt.phone),
                "、".join(pt.id_number_masked or "" for pt in people if pt.id_number_masked),
                i.request,
            ]
        )
    if truncated:
        w.writerow([f"（仅导出前 {CSV_ROWS} 条，请缩小筛选范围）"])
    return out.getvalue()


@routes.get("/api/items.csv")
@operation(
    "The filtered item list as CSV (UTF-8 with a BOM; identities masked; at most 2000 rows, "
    "a last line says when more matched); audit-logged",
    tag="items",
    query=ListQuery,
    media={"text/csv": {"type": "string"}},
)
async def export_items(request: web.Request) -> web.Response:
    """The filtered list as CSV (UTF-8 with a BOM, so spreadsheet programs read the Chinese).

    The filters, order and scope are ``GET /api/items``'s; at most ``CSV_ROWS`` rows
    (a last line says when more matched). Identities are masked. Audit-logged.
    """
    _p, found = await _listed(request, "export_items", limit=CSV_ROWS + 1)
    truncated = len(found) > CSV_ROWS
    body = await asyncio.to_thread(_csv, request, found[:CSV_ROWS], truncated)
    name = f"petition-items-{local_today().isoformat()}.csv"
    return web.Response(
        body=("\ufeff" + body).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
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
    calendar = calendar_of(request)
    return reply(DueList(today=local_today(), items=[DueItem.of(d, calendar) for d in shown]))


@routes.get("/api/handlers")
@operation(
    "Officials who may be named as an item's handler (of the caller's scope, or of the "
    "subtree of unit_id)",
    tag="items",
    response=Handlers,
    query=UnitQuery,
)
async def handlers(request: web.Request) -> web.Response:
    """Officials who may be named as an item's handler, or filtered on as one.

    Without ``unit_id``: those of the caller's scope; with it: those of that unit's subtree
    (a transfer names a handler of the receiving unit, which may lie outside the caller's
    scope). Names and units only.
    """
    p = require_official(request)
    tree = request.app[keys.STORE].tree
    unit_id = query_int(request, "unit_id", lo=1, hi=MAX_ID, default=0) or None
    if unit_id is not None and tree.get(unit_id) is None:
        raise ValidationError(f"unit {unit_id} does not exist")
    units = sorted(tree.subtree(unit_id)) if unit_id is not None else scope_units(request, p, None)
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.list_officials(tx, units)
    return reply(
        Handlers(
            handlers=[
                Handler(id=aid, name=name, unit_id=uid, unit_name=unit_name(request, uid))
                for aid, name, uid in found
            ]
        )
    )


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
        supervisions = await items.list_supervisions(tx, item.id)
        await accounts.audit(tx, p.ref, "view_item", "item", item.id, remote=remote_of(request))
    holder = item.handling_unit_id or item.registering_unit_id
    tree = request.app[keys.STORE].tree
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
            **ItemDetail.fields_of(item, calendar_of(request)),
            backlog_case_id=case.id if case else None,
            # as POST /api/items/{id}/supervise decides: a unit above the one holding the item
            may_supervise=(
                p.unit_id is not None and p.unit_id != holder and in_scope(p, holder, tree)
            ),
            supervisions=[
                ItemSupervision(
                    id=s.id,
                    unit_id=s.unit_id,
                    unit_name=unit_name(request, s.unit_id),
                    reason=s.reason,
                    due_on=s.due_on,
                    at=s.at,
                )
                for s in supervisions
            ],
            unit_names={
                str(uid): unit_name(request, uid)
                for uid in sorted(u for u in named if u is not None)
            },
        )
    )


@routes.get("/api/items/counts")
@operation(
    "The navigation's badges: overdue, due within 3 days, waiting for acknowledgement by the "
    "caller's units, backlog entries missing",
    tag="items",
    response=Counts,
    query=UnitQuery,
)
async def counts(request: web.Request) -> web.Response:
    """What the navigation badges count for the caller, each in the caller's scope.

    ``overdue`` and ``due_soon`` (within 3 days): items with a unit deadline, as the console's
    "my work" lists them; ``to_acknowledge``: items transferred or assigned to a unit of the
    caller's own subtree and not yet acknowledged (签收); ``backlog_missing``: monthly entries
    missing on open backlog cases of the caller's units.
    """
    p, units = await _due_units(request)
    assert p.unit_id is not None
    tree = request.app[keys.STORE].tree
    own = sorted(tree.subtree(p.unit_id))
    assert p.account_id is not None
    today = local_today()
    async with request.app[keys.STORE].transaction() as tx:
        overdue = await items.list_overdue(tx, units, today)
        soon = await items.list_due(tx, units, 3, today)
        waiting = await items.list_items(
            tx,
            unit_ids=own,
            viewer_account_id=p.account_id,
            states=[ItemState.TRANSFERRED, ItemState.ASSIGNED],
            limit=500,
        )
        attention = await items.backlog_attention(
            tx, unit_ids=scope_units(request, p, None), today=today
        )
    due = [*overdue, *soon]
    confidential = [d.item_id for d in due if d.confidential]
    visible = await visible_items(request, p, confidential) if confidential else set()
    shown = [d for d in due if not d.confidential or d.item_id in visible]
    return reply(
        Counts(
            overdue=sum(1 for d in shown if d.due_on < today),
            due_soon=sum(1 for d in shown if d.due_on >= today),
            to_acknowledge=sum(1 for i in waiting if i.handling_unit_id in set(own)),
            backlog_missing=sum(len(a.missing_months) for a in attention),
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
