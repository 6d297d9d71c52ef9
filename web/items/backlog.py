"""Backlog cases: flagging, listings, the leader's page, attention, monthly progress."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from config.errors import AccessDenied, NotFound, ValidationError
from records import accounts, items
from records.enums import Role
from records.lifecycle import (
    STATE_LABELS_ZH,
)
from records.lookup import format_code
from records.policy import Action, decide
from records.principals import Principal
from web import keys
from web.auth import authorize, remote_of, require_official
from web.input import integer, query_int, read_json, text
from web.items.common import (
    MAX_ID,
    MAX_TEXT,
    existing_unit,
    iso,
    item_target,
    load_item,
    local_today,
    parse_date,
    query_date,
    require_unit_scope,
    scope_units,
    unit_name,
)
from web.items.wire import (
    case_json,
    entry_json,
)
from web.templates import render

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _load_case(request: web.Request) -> tuple[Principal, items.BacklogCaseInfo, items.Item]:
    p = require_official(request)
    try:
        case_id = int(request.match_info["case_id"])
    except ValueError as exc:
        raise NotFound(f"no backlog case {request.match_info['case_id'][:20]!r}") from exc
    async with request.app[keys.STORE].transaction() as tx:
        case = await items.get_backlog_case(tx, case_id)
        item = await items.get_item(tx, case.item_id)
    if p.account_id == case.leader_account_id and p.account_id not in item.recused_account_ids:
        return p, case, item  # the leader in charge (包案领导) sees his case wherever it is
    await authorize(request, Action.VIEW_ITEM, item_target(item))
    return p, case, item


@routes.post("/api/items/{item_id}/backlog")
async def flag_backlog(request: web.Request) -> web.Response:
    """Flag the item as a backlog case with the five ones (五个一)."""
    p, item = await load_item(request, Action.EDIT_ITEM)
    data = await read_json(request)
    leader_id = integer(data, "leader_account_id", lo=1, hi=MAX_ID)
    assert leader_id is not None
    unit_ids_raw = data.get("unit_ids")
    if (
        not isinstance(unit_ids_raw, list)
        or not unit_ids_raw
        or len(unit_ids_raw) > 50
        or not all(isinstance(u, int) and not isinstance(u, bool) for u in unit_ids_raw)
    ):
        raise ValidationError("field 'unit_ids' must be a list of 1..50 unit ids")
    unit_ids = [existing_unit(request, u) for u in unit_ids_raw]
    raw_due = data.get("plan_due_on")
    plan_due_on = None if raw_due is None else parse_date(raw_due, "field 'plan_due_on'")
    async with request.app[keys.STORE].transaction() as tx:
        leader = await accounts.get_account(tx, leader_id)
        if Role.LEADER not in leader.roles:
            raise ValidationError(f"account {leader_id} is not a leader")
        case = await items.flag_backlog(
            tx,
            item.id,
            leader_account_id=leader_id,
            team=text(data, "team", max_len=MAX_TEXT),
            resolution_plan=text(data, "resolution_plan", max_len=MAX_TEXT),
            stability_plan=text(data, "stability_plan", max_len=MAX_TEXT),
            ledger=text(data, "ledger", max_len=MAX_TEXT),
            unit_ids=unit_ids,
            account_id=p.account_id,
            plan_due_on=plan_due_on,
        )
        if item.confidential:
            await items.set_handler(tx, item.id, leader_id)
        await accounts.audit(
            tx,
            p.ref,
            "backlog_flag",
            "item",
            item.id,
            remote=remote_of(request),
            detail={"case": case.id},
        )
    return web.json_response(case_json(case), status=201)


async def _case_summaries(
    request: web.Request, p: Principal, cases: Sequence[items.BacklogCaseInfo]
) -> list[dict[str, Any]]:
    tree = request.app[keys.STORE].tree
    today = local_today()
    out: list[dict[str, Any]] = []
    async with request.app[keys.STORE].transaction() as tx:
        for case in cases:
            item = await items.get_item(tx, case.item_id)
            mine = p.account_id == case.leader_account_id
            if p.account_id in item.recused_account_ids or not (
                mine or decide(p, Action.VIEW_ITEM, item_target(item), tree)
            ):
                continue
            missing = await items.missing_months(tx, case.id, through=today)
            out.append(
                {
                    **case_json(case),
                    "lookup_code": format_code(item.lookup_code),
                    "state": item.state.value,
                    "state_label": STATE_LABELS_ZH[item.state],
                    "due_on": iso(item.due_on),
                    "request": item.request[:80],
                    "missing_months": {str(u): m for u, m in missing.items()},
                    "missing_count": sum(len(m) for m in missing.values()),
                }
            )
    return out


@routes.get("/api/backlog")
async def list_backlog(request: web.Request) -> web.Response:
    """Backlog cases involving the caller's scope (``mine=true``: where I am the leader)."""
    p = require_official(request)
    mine = request.query.get("mine") == "true"
    async with request.app[keys.STORE].transaction() as tx:
        cases = await items.list_backlog_cases(
            tx,
            leader_account_id=p.account_id if mine else None,
            unit_ids=None if mine else scope_units(request, p, None),
        )
    return web.json_response({"cases": await _case_summaries(request, p, cases)})


@routes.get("/api/backlog/mine")
async def my_backlog_page(request: web.Request) -> web.Response:
    """The leader's own cases on a phone-sized HTML page."""
    p = require_official(request)
    async with request.app[keys.STORE].transaction() as tx:
        cases = await items.list_backlog_cases(tx, leader_account_id=p.account_id)
    summaries = await _case_summaries(request, p, cases)
    body = render(
        "backlog_mine.html", {"leader": p.name, "count": len(summaries), "cases": summaries}
    )
    return web.Response(text=body, content_type="text/html", charset="utf-8")


def attention_json(request: web.Request, a: items.BacklogAttention, code: str) -> dict[str, Any]:
    """The wire form of a backlog case needing a unit's attention."""
    return {
        "case_id": a.case_id,
        "item_id": a.item_id,
        "lookup_code": code,
        "unit_id": a.unit_id,
        "unit_name": unit_name(request, a.unit_id),
        "leader_account_id": a.leader_account_id,
        "plan_due_on": iso(a.plan_due_on),
        "plan_overdue": a.plan_overdue,
        "days_overdue": a.days_overdue,
        "missing_months": list(a.missing_months),
    }


@routes.get("/api/backlog/attention")
async def backlog_attention(request: web.Request) -> web.Response:
    """Per unit of the caller's scope, open cases with an overdue plan or missing months."""
    p = require_official(request)
    unit_id = query_int(request, "unit_id", lo=1, hi=MAX_ID, default=0) or None
    if unit_id is not None:
        await require_unit_scope(request, unit_id, "backlog_attention")
    units = scope_units(request, p, unit_id)
    today = query_date(request, "as_of") or local_today()
    tree = request.app[keys.STORE].tree
    rows: list[dict[str, Any]] = []
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.backlog_attention(tx, unit_ids=units, today=today)
        readable: dict[str, str | None] = {}
        for a in found:
            if a.item_id not in readable:
                item = await items.get_item(tx, a.item_id)
                mine = p.account_id == a.leader_account_id
                ok = p.account_id not in item.recused_account_ids and (
                    mine or decide(p, Action.VIEW_ITEM, item_target(item), tree)
                )
                readable[a.item_id] = format_code(item.lookup_code) if ok else None
            code = readable[a.item_id]
            if code is not None:
                rows.append(attention_json(request, a, code))
    return web.json_response(
        {
            "today": today.isoformat(),
            "overdue_plans": len({r["case_id"] for r in rows if r["plan_overdue"]}),
            "missing_entries": sum(len(r["missing_months"]) for r in rows),
            "units": rows,
        }
    )


@routes.put("/api/backlog/{case_id}/plan-due")
async def set_plan_due(request: web.Request) -> web.Response:
    """Set or clear the day the case's resolution plan is due (化解时限)."""
    p, case, item = await _load_case(request)
    await authorize(request, Action.EDIT_ITEM, item_target(item))
    data = await read_json(request)
    raw = data.get("plan_due_on")
    due = None if raw is None else parse_date(raw, "field 'plan_due_on'")
    async with request.app[keys.STORE].transaction() as tx:
        updated = await items.set_plan_due(tx, case.id, due)
        await accounts.audit(
            tx,
            p.ref,
            "backlog_plan_due",
            "backlog",
            str(case.id),
            remote=remote_of(request),
            detail={"plan_due_on": iso(due)},
        )
    return web.json_response(case_json(updated))


@routes.post("/api/backlog/{case_id}/close")
async def close_backlog(request: web.Request) -> web.Response:
    """Close (销号) the case: its item concluded and resolved; by its leader or a leader in scope.

    Audit-logged. 403 for anyone else; 422 while the item is not concluded and resolved;
    409 when already closed.
    """
    p, case, item = await _load_case(request)
    closer = p.account_id
    if closer is None:  # pragma: no cover - require_official admits accounts only
        raise AccessDenied("closing a backlog case (销号) needs an official's account")
    if closer != case.leader_account_id:
        if Role.LEADER not in p.roles:
            raise AccessDenied(
                f"closing backlog case {case.id} (销号) is for its leader in charge or a leader "
                f"in scope; {p.name} is not a leader"
            )
        await authorize(request, Action.EDIT_ITEM, item_target(item))
    async with request.app[keys.STORE].transaction() as tx:
        closed = await items.close_backlog(tx, case.id, account_id=closer)
        await accounts.audit(
            tx,
            p.ref,
            "backlog_close",
            "backlog",
            str(case.id),
            remote=remote_of(request),
            detail={"item": item.id},
        )
    return web.json_response(case_json(closed))


@routes.get("/api/backlog/{case_id}")
async def get_backlog(request: web.Request) -> web.Response:
    """A backlog case with its progress entries and missing months; audit-logged."""
    p, case, item = await _load_case(request)
    async with request.app[keys.STORE].transaction() as tx:
        entries = await items.progress_entries(tx, case.id)
        missing = await items.missing_months(tx, case.id, through=local_today())
        closer = await accounts.display_names(tx, {case.closed_by}) if case.closed_by else {}
        await accounts.audit(
            tx, p.ref, "view_backlog", "backlog", str(case.id), remote=remote_of(request)
        )
    return web.json_response(
        {
            **case_json(case),
            "lookup_code": format_code(item.lookup_code),
            "state": item.state.value,
            "entries": [entry_json(e) for e in entries],
            "missing_months": {str(u): m for u, m in missing.items()},
            "resolved": item.resolved,
            "may_close": _may_close(request, p, case, item),
            "closed_by_name": closer.get(case.closed_by) if case.closed_by else None,
        }
    )


def _may_close(
    request: web.Request, p: Principal, case: items.BacklogCaseInfo, item: items.Item
) -> bool:
    """Whether the caller may close (销号) the case: as ``close_backlog`` decides it."""
    if p.account_id == case.leader_account_id:
        return True
    return Role.LEADER in p.roles and bool(
        decide(p, Action.EDIT_ITEM, item_target(item), request.app[keys.STORE].tree)
    )


@routes.get("/api/backlog/{case_id}/missing")
async def backlog_missing(request: web.Request) -> web.Response:
    """Per involved unit, the months with no progress entry (through a day, default today)."""
    _p, case, _item = await _load_case(request)
    through = query_date(request, "through") or local_today()
    async with request.app[keys.STORE].transaction() as tx:
        missing = await items.missing_months(tx, case.id, through=through)
    return web.json_response(
        {
            "case_id": case.id,
            "through": through.isoformat(),
            "missing_months": {str(u): m for u, m in missing.items()},
        }
    )


_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@routes.post("/api/backlog/{case_id}/progress")
async def add_progress(request: web.Request) -> web.Response:
    """A unit's monthly progress entry; the unit must be in the caller's scope."""
    _p, case, _item = await _load_case(request)
    data = await read_json(request)
    unit_id = integer(data, "unit_id", lo=1, hi=MAX_ID)
    assert unit_id is not None
    month = text(data, "month", max_len=7)
    if not _MONTH.match(month):
        raise ValidationError(f"field 'month' {month!r}: YYYY-MM expected")
    p = await require_unit_scope(request, unit_id, "backlog_progress")
    async with request.app[keys.STORE].transaction() as tx:
        entry = await items.add_progress_entry(
            tx,
            case.id,
            unit_id=unit_id,
            month=month,
            text=text(data, "text", max_len=MAX_TEXT),
            account_id=p.account_id,
        )
        await accounts.audit(
            tx,
            p.ref,
            "backlog_progress",
            "backlog",
            str(case.id),
            remote=remote_of(request),
            detail={"unit": unit_id, "month": month},
        )
    return web.json_response(entry_json(entry), status=201)
