"""Visits in batches and person-times, supervision (督办) of items, the online platforms."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field

from config.errors import ValidationError
from records import accounts, items, statistics
from records.deadlines import CHINA_TZ
from records.enums import Role
from records.item_models import ONLINE_PLATFORMS, VisitKind
from records.policy import Action, UnitTarget, in_scope
from web import keys
from web.auth import authorize, remote_of, require_official
from web.input import choice, integer, query_int, read_json, text
from web.items.common import (
    ITEM_ID,
    MAX_ID,
    calendar_of,
    existing_unit,
    load_item,
    local_today,
    opt_text,
    query_date,
    query_enum,
    require_unit_scope,
    scope_units,
)
from web.items.wire import Item, Platforms, Supervised, Supervision, Visit, Visits
from web.rest import ID32, Choice, Int, ItemPath, Request, Text, operation, reply

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

#: what a person reads for each kind (reports and pages are Chinese)
VISIT_KIND_ZH = {
    VisitKind.WALK_IN: "来访接待",
    VisitKind.LEADER_RECEPTION: "领导接访",
    VisitKind.OUTREACH: "领导下访",
    VisitKind.TO_CITY: "赴市上访",
    VisitKind.TO_PROVINCE: "赴省上访",
    VisitKind.TO_BEIJING: "进京上访",
}


def visit_wire(v: items.VisitInfo) -> Visit:
    """The wire form of a recorded batch of visitors."""
    return Visit(
        id=v.id,
        kind=v.kind,
        kind_label=VISIT_KIND_ZH[v.kind],
        unit_id=v.unit_id,
        visited_on=v.visited_on,
        persons=v.persons,
        collective=v.collective,
        leader_account_id=v.leader_account_id,
        item_id=v.item_id,
        place=v.place,
        note=v.note,
        recorded_by=v.recorded_by,
        recorded_at=v.recorded_at,
    )


class VisitBody(Request):
    """A batch of visitors (checked field by field in the handler, between its scope checks)."""

    kind: Annotated[VisitKind, Choice(tuple(VisitKind))]
    unit_id: Annotated[int, Int(1, MAX_ID)] | None = None
    visited_on: dt.date
    persons: Annotated[int, Int(1, 10_000)]
    leader_account_id: Annotated[int, Int(1, MAX_ID)] | None = None
    item_id: ID32 | None = None
    place: Annotated[str, Text(200)] | None = None
    note: Annotated[str, Text(2000, min_len=0)] = ""


class VisitsQuery(BaseModel):
    """Filters of ``GET /api/visits``."""

    unit_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None
    from_: Annotated[dt.date | None, Field(alias="from")] = None
    until: dt.date | None = None
    kind: VisitKind | None = None


class SuperviseBody(Request):
    """Why, and by when."""

    reason: Annotated[str, Text(2000)]
    due_on: dt.date | None = None


def _day(data: dict[str, Any], key: str, *, required: bool) -> dt.date | None:
    raw = data.get(key)
    if raw is None and not required:
        return None
    if not isinstance(raw, str):
        raise ValidationError(f"field {key!r} must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationError(f"field {key!r}={raw!r:.20}: expected YYYY-MM-DD") from exc


@routes.post("/api/visits")
@operation(
    "Record a batch of visitors: walk-in (来访), leader reception (领导接访), outreach (下访), "
    "or to a higher level (赴市/赴省/进京); audited",
    tag="visits",
    body=VisitBody,
    response=Visit,
    status=201,
)
async def record_visit(request: web.Request) -> web.Response:
    """Record a batch of visitors (walk-in, leader reception, outreach, to a higher level).

    Body: ``kind``, ``unit_id`` (default: the caller's unit), ``visited_on``, ``persons``,
    ``leader_account_id`` (leader kinds: a leader of that unit or a unit above it),
    ``item_id``, ``place`` (outreach: required), ``note``. Audited.
    """
    p = require_official(request)
    data = await read_json(request)
    kind = VisitKind(str(choice(data, "kind", VisitKind)))
    unit_raw = integer(data, "unit_id", lo=1, hi=MAX_ID, required=False)
    unit_id = existing_unit(request, unit_raw if unit_raw is not None else p.unit_id or 0)
    await authorize(request, Action.REGISTER_ITEM, UnitTarget(unit_id))
    # the role may register items anywhere (a reception centre registers for any unit); a
    # visit is counted for a unit of the recorder's own subtree only
    await require_unit_scope(request, unit_id, "record_visit")
    visited_on = _day(data, "visited_on", required=True)
    assert visited_on is not None
    persons = integer(data, "persons", lo=1, hi=10_000)
    assert persons is not None
    leader_id = integer(data, "leader_account_id", lo=1, hi=MAX_ID, required=False)
    item_id = opt_text(data, "item_id", max_len=32)
    if item_id is not None and not ITEM_ID.match(item_id):
        raise ValidationError("field 'item_id' must be an item id (32 hex digits)")
    new = items.NewVisit(
        kind=kind,
        unit_id=unit_id,
        visited_on=visited_on,
        persons=persons,
        leader_account_id=leader_id,
        item_id=item_id,
        place=opt_text(data, "place", max_len=200),
        note=text(data, "note", max_len=2000, required=False),
    )
    store = request.app[keys.STORE]
    async with store.transaction() as tx:
        if leader_id is not None:
            leader = await accounts.get_account(tx, leader_id)
            if Role.LEADER not in leader.roles:
                raise ValidationError(f"account {leader_id} is not a leader")
            # DOMAIN.md: a leader takes visits within the leader's own unit's subtree only
            if not store.tree.within(unit_id, leader.unit_id):
                raise ValidationError(
                    f"leader {leader_id} belongs to unit {leader.unit_id}, not to unit "
                    f"{unit_id} or above it"
                )
        visit = await items.record_visit(tx, new, account_id=p.account_id, today=local_today())
        await accounts.audit(
            tx,
            p.ref,
            "record_visit",
            "unit",
            str(unit_id),
            remote=remote_of(request),
            detail={"visit": visit.id, "kind": kind.value, "persons": persons},
        )
    return reply(visit_wire(visit), status=201)


@routes.get("/api/visits")
@operation(
    "Visits of the caller's scope, newest first", tag="visits", response=Visits, query=VisitsQuery
)
async def list_visits(request: web.Request) -> web.Response:
    """Visits of the caller's scope (``unit_id``, ``from``, ``until`` inclusive, ``kind``)."""
    p = require_official(request)
    unit_id = query_int(request, "unit_id", lo=1, hi=MAX_ID, default=0) or None
    if unit_id is not None:
        await require_unit_scope(request, unit_id, "list_visits")
    today = local_today()
    start = query_date(request, "from") or today.replace(month=1, day=1)
    until = query_date(request, "until") or today
    kinds = query_enum(request, "kind", VisitKind)
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.list_visits(
            tx,
            unit_ids=scope_units(request, p, unit_id),
            start=start,
            end=until + dt.timedelta(days=1),
            kinds=[VisitKind(k) for k in kinds] if kinds else None,
        )
    return reply(Visits(visits=[visit_wire(v) for v in found]))


@routes.get("/api/online-platforms")
@operation("The online platforms a new online item may name", tag="items", response=Platforms)
async def online_platforms(request: web.Request) -> web.Response:
    """The online platforms an online item may name (older free-text values stay readable)."""
    require_official(request)
    return reply(Platforms(platforms=list(ONLINE_PLATFORMS)))


@routes.post("/api/items/{item_id}/supervise")
@operation(
    "Supervise (督办) an item, by a unit above the one holding it; audited",
    tag="items",
    body=SuperviseBody,
    response=Supervised,
    status=201,
    path=ItemPath,
)
async def supervise(request: web.Request) -> web.Response:
    """Supervise (督办) an item: only a unit above the one holding it. Audited.

    Body: ``reason``, ``due_on`` (optional). Answers the item with its supervisions.
    """
    p, item = await load_item(request, Action.VIEW_ITEM)
    data = await read_json(request)
    reason = text(data, "reason", max_len=2000)
    due_on = _day(data, "due_on", required=False)
    holder = item.handling_unit_id or item.registering_unit_id
    tree = request.app[keys.STORE].tree
    if p.unit_id is None or p.unit_id == holder or not in_scope(p, holder, tree):
        raise ValidationError(
            "supervision (督办) is by a unit above the one holding the item "
            f"(unit {holder}); yours is {p.unit_id}"
        )
    async with request.app[keys.STORE].transaction() as tx:
        await items.supervise(
            tx, item.id, unit_id=p.unit_id, account_id=p.account_id, reason=reason, due_on=due_on
        )
        found = await items.list_supervisions(tx, item.id)
        await accounts.audit(
            tx, p.ref, "supervise_item", "item", item.id, remote=remote_of(request)
        )
    return reply(
        Supervised(
            **Item.fields_of(item, calendar_of(request)),
            supervisions=[
                Supervision(
                    id=s.id,
                    unit_id=s.unit_id,
                    account_id=s.account_id,
                    reason=s.reason,
                    due_on=s.due_on,
                    at=s.at,
                )
                for s in found
            ],
        ),
        status=201,
    )


def _kind_json(k: items.KindFigures, prev: items.KindFigures) -> dict[str, Any]:
    def yoy(cur: int, before: int) -> float | None:
        change = statistics.year_on_year(cur, before)
        return None if change is None else float(change)

    return {
        "kind": k.kind.value,
        "label": VISIT_KIND_ZH[k.kind],
        "batches": k.batches,
        "persons": k.persons,
        "collective_batches": k.collective_batches,
        "collective_persons": k.collective_persons,
        "previous": {"batches": prev.batches, "persons": prev.persons},
        "change_percent": {
            "batches": yoy(k.batches, prev.batches),
            "persons": yoy(k.persons, prev.persons),
        },
    }


async def visits_section(
    request: web.Request,
    *,
    start: dt.date,
    end: dt.date,
    unit_ids: list[int] | None,
    as_of: dt.datetime,
) -> dict[str, Any]:
    """Visit figures of a period with the same period a year before (同比), and supervision.

    Both periods are read as of the same ``as_of`` (the report's): reproducible, and a
    visit of last year recorded late still counts in the comparison. The figures as filed
    last year are in its frozen report.
    """
    p_start, p_end = statistics.previous_period(start, end)
    async with request.app[keys.STORE].transaction() as tx:
        now = await items.visit_figures(tx, start=start, end=end, unit_ids=unit_ids, as_of=as_of)
        before = await items.visit_figures(
            tx, start=p_start, end=p_end, unit_ids=unit_ids, as_of=as_of
        )
        supervisions, supervised = await items.supervision_count(
            tx,
            start=dt.datetime.combine(start, dt.time(), CHINA_TZ),
            end=min(dt.datetime.combine(end, dt.time(), CHINA_TZ), as_of),
            unit_ids=unit_ids,
        )
    return {
        "previous_start": p_start.isoformat(),
        "previous_end": p_end.isoformat(),
        "kinds": [_kind_json(k, before.of(k.kind)) for k in now.kinds],
        "supervision": {"supervisions": supervisions, "items": supervised},
    }
