"""Backlog cases: flagging, listings, the leader's page, attention, monthly progress."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, Field

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
    UNIT_PARAM,
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
    Attention,
    BacklogAttention,
    BacklogCase,
    BacklogCaseDetail,
    BacklogCases,
    BacklogCaseSummary,
    Missing,
    ProgressEntry,
)
from web.rest import CasePath, Int, ItemPath, Request, Text, operation, reply
from web.templates import render

_UNIT = Annotated[int, Int(1, MAX_ID)]


class FlagBody(Request):
    """The five ones (五个一): a leader, a team, two plans, a ledger; the units involved."""

    leader_account_id: _UNIT
    team: Annotated[str, Text(MAX_TEXT)]
    resolution_plan: Annotated[str, Text(MAX_TEXT)]
    stability_plan: Annotated[str, Text(MAX_TEXT)]
    ledger: Annotated[str, Text(MAX_TEXT)]
    unit_ids: Annotated[list[_UNIT], Field(min_length=1, max_length=50)]
    plan_due_on: dt.date | None = None


class PlanDueBody(Request):
    """The day the resolution plan is due, or null to clear it."""

    plan_due_on: dt.date | None


class ProgressBody(Request):
    """A unit's entry for a month."""

    unit_id: _UNIT
    month: Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
    text: Annotated[str, Text(MAX_TEXT)]


class MineQuery(BaseModel):
    """``?mine=true``: the cases where I am the leader."""

    mine: Literal["true", "false"] | None = None


class AttentionQuery(BaseModel):
    """``?unit_id=&as_of=``."""

    unit_id: UNIT_PARAM = None
    as_of: Annotated[dt.date | None, Field(description="the day to judge on (default today)")] = (
        None
    )


class MissingQuery(BaseModel):
    """``?through=``."""

    through: dt.date | None = None


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
@operation(
    "Flag as a backlog case with the five ones (五个一)",
    tag="items",
    body=FlagBody,
    response=BacklogCase,
    status=201,
    path=ItemPath,
)
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
    return reply(BacklogCase.of(case), status=201)


async def _case_summaries(
    request: web.Request, p: Principal, cases: Sequence[items.BacklogCaseInfo]
) -> list[BacklogCaseSummary]:
    tree = request.app[keys.STORE].tree
    today = local_today()
    out: list[BacklogCaseSummary] = []
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
                BacklogCaseSummary(
                    **BacklogCase.fields_of(case),
                    lookup_code=format_code(item.lookup_code),
                    state=item.state,
                    state_label=STATE_LABELS_ZH[item.state],
                    due_on=item.due_on,
                    request=item.request[:80],
                    missing_months={str(u): m for u, m in missing.items()},
                    missing_count=sum(len(m) for m in missing.values()),
                )
            )
    return out


@routes.get("/api/backlog")
@operation(
    "Backlog cases in the caller's scope (mine=true: where I am the leader)",
    tag="backlog",
    response=BacklogCases,
    query=MineQuery,
)
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
    return reply(BacklogCases(cases=await _case_summaries(request, p, cases)))


@routes.get("/api/backlog/mine")
@operation(
    "The leader's own cases on a phone-sized HTML page",
    tag="backlog",
    media={"text/html": {"type": "string"}},
)
async def my_backlog_page(request: web.Request) -> web.Response:
    """The leader's own cases on a phone-sized HTML page."""
    p = require_official(request)
    async with request.app[keys.STORE].transaction() as tx:
        cases = await items.list_backlog_cases(tx, leader_account_id=p.account_id)
    summaries = await _case_summaries(request, p, cases)
    body = render(
        "backlog_mine.html",
        {
            "leader": p.name,
            "count": len(summaries),
            "cases": [c.model_dump(mode="json") for c in summaries],
        },
    )
    return web.Response(text=body, content_type="text/html", charset="utf-8")


def _attention(request: web.Request, a: items.BacklogAttention, code: str) -> BacklogAttention:
    return BacklogAttention(
        case_id=a.case_id,
        item_id=a.item_id,
        lookup_code=code,
        unit_id=a.unit_id,
        unit_name=unit_name(request, a.unit_id),
        leader_account_id=a.leader_account_id,
        plan_due_on=a.plan_due_on,
        plan_overdue=a.plan_overdue,
        days_overdue=a.days_overdue,
        missing_months=list(a.missing_months),
    )


@routes.get("/api/backlog/attention")
@operation(
    "Per unit in scope, open backlog cases with an overdue plan or missing monthly entries",
    tag="backlog",
    response=Attention,
    query=AttentionQuery,
)
async def backlog_attention(request: web.Request) -> web.Response:
    """Per unit of the caller's scope, open cases with an overdue plan or missing months."""
    p = require_official(request)
    unit_id = query_int(request, "unit_id", lo=1, hi=MAX_ID, default=0) or None
    if unit_id is not None:
        await require_unit_scope(request, unit_id, "backlog_attention")
    units = scope_units(request, p, unit_id)
    today = query_date(request, "as_of") or local_today()
    tree = request.app[keys.STORE].tree
    rows: list[BacklogAttention] = []
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
                rows.append(_attention(request, a, code))
    return reply(
        Attention(
            today=today,
            overdue_plans=len({r.case_id for r in rows if r.plan_overdue}),
            missing_entries=sum(len(r.missing_months) for r in rows),
            units=rows,
        )
    )


@routes.put("/api/backlog/{case_id}/plan-due")
@operation(
    "Set or clear the day the resolution plan is due (化解时限)",
    tag="backlog",
    body=PlanDueBody,
    response=BacklogCase,
    path=CasePath,
)
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
    return reply(BacklogCase.of(updated))


@routes.post("/api/backlog/{case_id}/close")
@operation(
    "Close the case (销号): its item concluded and resolved; by its leader in charge or a "
    "leader with edit rights on the item; audit-logged",
    tag="backlog",
    response=BacklogCase,
    path=CasePath,
)
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
    return reply(BacklogCase.of(closed))


@routes.get("/api/backlog/{case_id}")
@operation(
    "A backlog case with progress entries and missing months",
    tag="backlog",
    response=BacklogCaseDetail,
    path=CasePath,
)
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
    return reply(
        BacklogCaseDetail(
            **BacklogCase.fields_of(case),
            lookup_code=format_code(item.lookup_code),
            state=item.state,
            entries=[ProgressEntry.of(e) for e in entries],
            missing_months={str(u): m for u, m in missing.items()},
            resolved=item.resolved,
            may_close=_may_close(request, p, case, item),
            closed_by_name=closer.get(case.closed_by) if case.closed_by else None,
        )
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
@operation(
    "Months without a progress entry, per involved unit",
    tag="backlog",
    response=Missing,
    path=CasePath,
    query=MissingQuery,
)
async def backlog_missing(request: web.Request) -> web.Response:
    """Per involved unit, the months with no progress entry (through a day, default today)."""
    _p, case, _item = await _load_case(request)
    through = query_date(request, "through") or local_today()
    async with request.app[keys.STORE].transaction() as tx:
        missing = await items.missing_months(tx, case.id, through=through)
    return reply(
        Missing(
            case_id=case.id,
            through=through,
            missing_months={str(u): m for u, m in missing.items()},
        )
    )


_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@routes.post("/api/backlog/{case_id}/progress")
@operation(
    "A unit's monthly progress entry",
    tag="backlog",
    body=ProgressBody,
    response=ProgressEntry,
    status=201,
    path=CasePath,
)
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
    return reply(ProgressEntry.of(entry), status=201)
