"""REST API of petition items: registration, lifecycle actions, notices, backlog cases, statistics.

Every route asks the policy (``authorize``, which audit-logs refusals) and every read of an
item is audit-logged. Lifecycle actions act for the unit that holds the item now (its
handling unit, or the registering unit before routing): the policy is asked on a target made
of that unit alone, so a unit that transferred an item away can still read it but no longer
moves it. The public routes under ``/api/public/`` need no login; they answer with states and
dates only, and a failed evaluation never says whether the code or the phone digits were
wrong. ``web/openapi.py`` describes every route here with its schemas.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web

from config.errors import AccessDenied, InvalidTransition, NotFound, ValidationError
from records import accounts, items, sessions, statistics
from records.base import utcnow
from records.calendar import HolidayCalendar
from records.deadlines import CHINA_TZ, local_date
from records.enums import Role
from records.item_models import Channel, ItemType, OriginLevel, Outcome
from records.lifecycle import (
    ARTICLES,
    STATE_LABELS_ZH,
    EventType,
    ItemState,
    allowed_events,
)
from records.lookup import format_code, normalise
from records.policy import Action, ItemTarget, UnitTarget, decide, in_scope
from records.principals import Principal
from records.text import unstorable_char
from web import keys
from web.api import session_json
from web.auth import authorize, remote_of, require_official
from web.errors import error_response
from web.input import choice, integer, query_int, read_json, text
from web.templates import Safe, escape, render, table

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_TEXT = 20_000
MAX_ID = 2**31 - 1
_ITEM_ID = re.compile(r"^[0-9a-f]{32}$")


# ---- small helpers ---------------------------------------------------------------------------


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _calendar(request: web.Request) -> HolidayCalendar:
    return request.app[keys.CALENDAR]


def _today() -> dt.date:
    return local_date(utcnow())


def _bool(data: dict[str, Any], key: str, *, default: bool | None = False) -> bool | None:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValidationError(f"field {key!r} must be true or false, got {value!r:.40}")
    return value


def _opt_text(data: dict[str, Any], key: str, *, max_len: int = 200) -> str | None:
    value = text(data, key, max_len=max_len, required=False, default="")
    return value or None


def _date(raw: object, what: str) -> dt.date:
    if not isinstance(raw, str):
        raise ValidationError(f"{what} must be a date YYYY-MM-DD, got {raw!r:.40}")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationError(f"{what} {raw!r:.40}: YYYY-MM-DD expected") from exc


def _query_date(request: web.Request, key: str) -> dt.date | None:
    raw = request.query.get(key)
    return None if raw is None else _date(raw, f"query parameter {key!r}")


def _query_enum(request: web.Request, key: str, options: Any) -> list[str] | None:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return None
    allowed = {o.value for o in options}
    values = [v for v in raw.split(",") if v]
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValidationError(f"query parameter {key!r}: {bad!r:.60} not in {sorted(allowed)}")
    return values


def _unit_id(request: web.Request, value: int) -> int:
    if request.app[keys.STORE].tree.get(value) is None:
        raise ValidationError(f"unit {value} does not exist")
    return value


def _mask_id_number(value: str | None) -> str | None:
    if not value:
        return value
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def _unit_name(request: web.Request, unit_id: int | None) -> str:
    unit = request.app[keys.STORE].tree.get(unit_id) if unit_id is not None else None
    return unit.name if unit is not None else ""


def _scope_units(request: web.Request, p: Principal, unit_id: int | None) -> list[int] | None:
    """The unit ids a listing covers: ``None`` for every unit (petition bureau, no filter)."""
    tree = request.app[keys.STORE].tree
    assert p.unit_id is not None
    if unit_id is None:
        return None if tree.sees_everything(p.unit_id) else sorted(tree.subtree(p.unit_id))
    return sorted(tree.subtree(unit_id))


async def _require_unit_scope(request: web.Request, unit_id: int, what: str) -> Principal:
    """The official, who must have ``unit_id`` in scope; a refusal is audit-logged."""
    p = require_official(request)
    tree = request.app[keys.STORE].tree
    if tree.get(unit_id) is None:
        raise ValidationError(f"unit {unit_id} does not exist")
    if not in_scope(p, unit_id, tree):
        async with request.app[keys.STORE].transaction() as tx:
            await accounts.audit(
                tx,
                p.ref,
                what,
                "unit",
                str(unit_id),
                remote=remote_of(request),
                outcome="denied",
                detail={"reason": "unit outside the principal's scope"},
            )
        raise AccessDenied(f"{what} refused: unit {unit_id} is outside the principal's scope")
    return p


# ---- wire forms ------------------------------------------------------------------------------


def item_target(item: items.Item, *, holder_only: bool = False) -> ItemTarget:
    """What the policy needs of an item (see :meth:`records.items.Item.target`)."""
    return item.target(holder_only=holder_only)


def item_json(item: items.Item, *, full: bool = True) -> dict[str, Any]:
    """The wire form of an item; lists (``full=False``) mask identity numbers, omit content."""
    out: dict[str, Any] = {
        "id": item.id,
        "lookup_code": format_code(item.lookup_code),
        "state": item.state.value,
        "state_label": STATE_LABELS_ZH[item.state],
        "type": item.type.value,
        "channel": item.channel.value,
        "category": item.category,
        "urgent": item.urgent,
        "major": item.major,
        "confidential": item.confidential,
        "anonymous": item.anonymous,
        "is_group": item.is_group,
        "registering_unit_id": item.registering_unit_id,
        "handling_unit_id": item.handling_unit_id,
        "registered_at": item.registered_at.isoformat(),
        "due": (
            {"on": item.due_on.isoformat(), "what": item.due_what, "article": item.due_article}
            if item.due_on is not None
            else None
        ),
        "petitioners": [
            {
                "name": pt.name,
                "id_number": pt.id_number if full else _mask_id_number(pt.id_number),
                "address": pt.address if full else None,
                "phone": pt.phone if full else None,
                "is_representative": pt.is_representative,
            }
            for pt in item.petitioners
        ],
    }
    if not full:
        out["request"] = item.request[:80]
        return out
    out.update(
        {
            "national_number": item.national_number,
            "rule_set": item.rule_set.value,
            "version": item.version,
            "place": item.place,
            "request": item.request,
            "facts": item.facts,
            "reasons": item.reasons,
            "online_platform": item.online_platform,
            "origin_level": item.origin_level.value if item.origin_level else None,
            "led_by_other_unit": item.led_by_other_unit,
            "group_size": item.group_size,
            "agent_name": item.agent_name,
            "agent_authorisation": item.agent_authorisation,
            "subject_unit_id": item.subject_unit_id,
            "co_handling_unit_ids": list(item.co_handling_unit_ids),
            "handler_account_ids": list(item.handler_account_ids),
            "recused_account_ids": list(item.recused_account_ids),
            "session_id": item.session_id,
            "duplicate_of_id": item.duplicate_of_id,
            "reviews_item_id": item.reviews_item_id,
            "outcome": item.outcome.value if item.outcome else None,
            "carried_out": item.carried_out,
            "resolved": item.resolved,
            "accepted_on_time": item.accepted_on_time,
            "opinion_on_time": item.opinion_on_time,
            "concluded_at": _iso(item.concluded_at),
            "evaluation": {"acceptance": item.eval_acceptance, "handling": item.eval_handling},
            "allowed_actions": allowed_actions(item.state),
        }
    )
    return out


def history_json(e: items.ItemHistoryEntry) -> dict[str, Any]:
    """The wire form of one history entry."""
    return {
        "seq": e.seq,
        "at": e.at.isoformat(),
        "account_id": e.account_id,
        "type": e.type.value,
        "from_state": e.from_state.value if e.from_state else None,
        "to_state": e.to_state.value,
        "reason": e.reason,
        "data": dict(e.data),
    }


def due_json(d: items.DueItem) -> dict[str, Any]:
    """The wire form of a due-list entry."""
    return {
        "item_id": d.item_id,
        "lookup_code": format_code(d.lookup_code),
        "state": d.state.value,
        "due_unit_id": d.due_unit_id,
        "handling_unit_id": d.handling_unit_id,
        "due_on": d.due_on.isoformat(),
        "due_what": d.due_what,
        "due_article": d.due_article,
        "days_left": d.days_left,
        "confidential": d.confidential,
    }


def progress_json(pp: items.PublicProgress) -> dict[str, Any]:
    """The public wire form of progress: states and dates, nothing personal."""
    return {
        "lookup_code": pp.lookup_code,
        "state": pp.state.value,
        "label": pp.label,
        "registered_on": pp.registered_on.isoformat(),
        "due_on": _iso(pp.due_on),
        "steps": [
            {"on": s.on.isoformat(), "state": s.state.value, "label": s.label} for s in pp.steps
        ],
        "can_evaluate_acceptance": pp.can_evaluate_acceptance,
        "can_evaluate_handling": pp.can_evaluate_handling,
    }


def case_json(c: items.BacklogCaseInfo) -> dict[str, Any]:
    """The wire form of a backlog case (the five ones)."""
    return {
        "id": c.id,
        "item_id": c.item_id,
        "leader_account_id": c.leader_account_id,
        "team": c.team,
        "resolution_plan": c.resolution_plan,
        "stability_plan": c.stability_plan,
        "ledger": c.ledger,
        "unit_ids": list(c.unit_ids),
        "flagged_at": c.flagged_at.isoformat(),
        "plan_due_on": _iso(c.plan_due_on),
    }


def entry_json(e: items.ProgressEntry) -> dict[str, Any]:
    """The wire form of a monthly progress entry."""
    return {
        "id": e.id,
        "case_id": e.case_id,
        "unit_id": e.unit_id,
        "month": f"{e.month:%Y-%m}",
        "text": e.text,
        "account_id": e.account_id,
        "written_at": e.written_at.isoformat(),
    }


def _dup_json(c: items.DuplicateCandidate) -> dict[str, Any]:
    return {
        "item_id": c.item_id,
        "lookup_code": format_code(c.lookup_code),
        "state": c.state.value,
        "registered_at": c.registered_at.isoformat(),
        "score": c.score,
        "reasons": list(c.reasons),
    }


# ---- loading an item -------------------------------------------------------------------------


def _item_id(request: web.Request) -> str:
    item_id = request.match_info["item_id"]
    if not _ITEM_ID.match(item_id):
        raise NotFound(f"no petition item {item_id[:40]!r}")
    return item_id


async def load_item(
    request: web.Request, action: Action, *, holder_only: bool = False
) -> tuple[Principal, items.Item]:
    """Read the item named in the path and check ``action`` on it (refusals audited)."""
    item_id = _item_id(request)
    async with request.app[keys.STORE].transaction() as tx:
        item = await items.get_item(tx, item_id)
    p = await authorize(request, action, item_target(item, holder_only=holder_only))
    return p, item


async def _visible(request: web.Request, p: Principal, item_ids: Sequence[str]) -> set[str]:
    """Which of ``item_ids`` the principal may read (confidentiality, recusal, scope)."""
    tree = request.app[keys.STORE].tree
    seen: set[str] = set()
    async with request.app[keys.STORE].transaction() as tx:
        for item_id in dict.fromkeys(item_ids):
            item = await items.get_item(tx, item_id)
            if decide(p, Action.VIEW_ITEM, item_target(item), tree):
                seen.add(item_id)
    return seen


# ---- registration ----------------------------------------------------------------------------


def _petitioners(data: dict[str, Any]) -> list[items.NewPetitioner]:
    raw = data.get("petitioners", [])
    if not isinstance(raw, list) or len(raw) > 50:
        raise ValidationError("field 'petitioners' must be a list of at most 50 objects")
    out: list[items.NewPetitioner] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ValidationError(f"petitioners[{i}] must be an object")
        out.append(
            items.NewPetitioner(
                name=text(entry, "name", max_len=200),
                id_number=_opt_text(entry, "id_number", max_len=32),
                address=_opt_text(entry, "address", max_len=300),
                phone=_opt_text(entry, "phone", max_len=32),
                is_representative=bool(_bool(entry, "is_representative")),
            )
        )
    return out


def _opt_item_ref(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _ITEM_ID.match(value):
        raise ValidationError(f"field {key!r} must be an item id (32 hex digits)")
    return value


@routes.post("/api/items")
async def register(request: web.Request) -> web.Response:
    """Register an item from any channel; answers the item and possible duplicates."""
    p = require_official(request)
    data = await read_json(request)
    unit_id = integer(data, "registering_unit_id", lo=1, hi=MAX_ID, required=False)
    unit_id = _unit_id(request, unit_id if unit_id is not None else p.unit_id or 0)
    await authorize(request, Action.REGISTER_ITEM, UnitTarget(unit_id))
    subject = integer(data, "subject_unit_id", lo=1, hi=MAX_ID, required=False)
    origin = choice(data, "origin_level", OriginLevel, required=False)
    session_id = _opt_text(data, "session_id", max_len=32)
    petitioners = _petitioners(data)
    new = items.NewItem(
        registering_unit_id=unit_id,
        type=ItemType(str(choice(data, "type", ItemType))),
        channel=Channel(str(choice(data, "channel", Channel))),
        request=text(data, "request", max_len=MAX_TEXT),
        facts=text(data, "facts", max_len=MAX_TEXT, required=False),
        reasons=text(data, "reasons", max_len=MAX_TEXT, required=False),
        category=_opt_text(data, "category", max_len=64),
        place=_opt_text(data, "place", max_len=200),
        online_platform=_opt_text(data, "online_platform", max_len=64),
        origin_level=OriginLevel(origin) if origin else None,
        led_by_other_unit=bool(_bool(data, "led_by_other_unit")),
        urgent=bool(_bool(data, "urgent")),
        major=bool(_bool(data, "major")),
        confidential=_bool(data, "confidential", default=None),
        anonymous=bool(_bool(data, "anonymous")),
        is_group=bool(_bool(data, "is_group")),
        group_size=integer(data, "group_size", lo=1, hi=100_000, required=False),
        petitioners=petitioners,
        agent_name=_opt_text(data, "agent_name"),
        agent_authorisation=_opt_text(data, "agent_authorisation"),
        agent_account_id=p.account_id if p.has(Role.AGENT) else None,
        subject_unit_id=_unit_id(request, subject) if subject is not None else None,
        national_number=_opt_text(data, "national_number", max_len=64),
        session_id=session_id,
        duplicate_of_id=_opt_item_ref(data, "duplicate_of_id"),
        reviews_item_id=_opt_item_ref(data, "reviews_item_id"),
    )
    store = request.app[keys.STORE]
    if session_id is not None:
        if not session_id.isalnum():
            raise ValidationError(f"session {session_id!r} not found")
        async with store.transaction() as tx:
            s = await sessions.get_session(tx, session_id)
        await authorize(request, Action.MODERATE_SESSION, s.target())
    first = petitioners[0] if petitioners else None
    async with store.transaction() as tx:
        for ref in (new.duplicate_of_id, new.reviews_item_id):
            if ref is not None:
                await items.get_item(tx, ref)
        candidates = await items.find_possible_duplicates(
            tx,
            id_number=first.id_number if first else None,
            name=first.name if first else None,
            phone=first.phone if first else None,
            request_text=new.request,
            unit_ids=_scope_units(request, p, None),
        )
        item = await items.register_item(tx, _calendar(request), new, account_id=p.account_id)
        if item.confidential and p.account_id is not None:
            # Art. 30: nobody but handlers sees it, so the registering official is the first.
            item = await items.set_handler(tx, item.id, p.account_id)
        if session_id is not None:
            await sessions.update_session(tx, session_id, item_id=item.id)
            await sessions.log_event(
                tx, session_id, "item_linked", actor=p.ref, data={"item": item.id}
            )
        await accounts.audit(tx, p.ref, "register_item", "item", item.id, remote=remote_of(request))
    visible = await _visible(request, p, [c.item_id for c in candidates])
    return web.json_response(
        {
            "item": item_json(item),
            "possible_duplicates": [_dup_json(c) for c in candidates if c.item_id in visible],
        },
        status=201,
    )


# ---- listing and reading ---------------------------------------------------------------------


@routes.get("/api/items")
async def list_items(request: web.Request) -> web.Response:
    """Items in the caller's scope (confidential ones only to handlers), newest first."""
    p = require_official(request)
    unit_id = query_int(request, "unit_id", lo=1, hi=MAX_ID, default=0) or None
    if unit_id is not None:
        await _require_unit_scope(request, unit_id, "list_items")
    states = _query_enum(request, "state", ItemState)
    types = _query_enum(request, "type", ItemType)
    channels = _query_enum(request, "channel", Channel)
    start = _query_date(request, "from")
    end = _query_date(request, "until")
    urgent_raw = request.query.get("urgent")
    if urgent_raw not in (None, "true", "false"):
        raise ValidationError(f"query parameter 'urgent'={urgent_raw!r:.20}: true or false")
    limit = query_int(request, "limit", lo=1, hi=500, default=100)
    offset = query_int(request, "offset", lo=0, hi=1_000_000, default=0)
    assert p.account_id is not None
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.list_items(
            tx,
            unit_ids=_scope_units(request, p, unit_id),
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
    return web.json_response({"items": [item_json(i, full=False) for i in found]})


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), CHINA_TZ)


async def _due_units(request: web.Request) -> tuple[Principal, list[int]]:
    p = require_official(request)
    unit_id = query_int(request, "unit_id", lo=1, hi=MAX_ID, default=0) or None
    if unit_id is not None:
        await _require_unit_scope(request, unit_id, "due_list")
    units = _scope_units(request, p, unit_id)
    return p, list(request.app[keys.STORE].tree.units) if units is None else units


async def _due_response(
    request: web.Request, p: Principal, found: list[items.DueItem]
) -> web.Response:
    confidential = [d.item_id for d in found if d.confidential]
    visible = await _visible(request, p, confidential) if confidential else set()
    shown = [d for d in found if not d.confidential or d.item_id in visible]
    return web.json_response({"today": _today().isoformat(), "items": [due_json(d) for d in shown]})


@routes.get("/api/items/due")
async def due_soon(request: web.Request) -> web.Response:
    """Items whose unit deadline falls within ``within_days`` (default 7), per unit subtree."""
    p, units = await _due_units(request)
    within = query_int(request, "within_days", lo=0, hi=366, default=7)
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.list_due(tx, units, within, _today())
    return await _due_response(request, p, found)


@routes.get("/api/items/overdue")
async def overdue(request: web.Request) -> web.Response:
    """Items whose unit deadline has passed, most overdue first, per unit subtree."""
    p, units = await _due_units(request)
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.list_overdue(tx, units, _today())
    return await _due_response(request, p, found)


async def _read_item(request: web.Request, p: Principal, item: items.Item) -> web.Response:
    async with request.app[keys.STORE].transaction() as tx:
        case = await items.backlog_case_of_item(tx, item.id)
        await accounts.audit(tx, p.ref, "view_item", "item", item.id, remote=remote_of(request))
    body = item_json(item)
    body["backlog_case_id"] = case.id if case else None
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
        await accounts.audit(
            tx, p.ref, "view_item_history", "item", item.id, remote=remote_of(request)
        )
    return web.json_response({"item_id": item.id, "history": [history_json(e) for e in entries]})


# ---- lifecycle actions -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ActionSpec:
    """One lifecycle action route: ``POST /api/items/{item_id}/<name>``.

    Attributes:
        name: path segment.
        event: the lifecycle event it appends.
        summary: one line for the OpenAPI document.
        fields: body fields: name → JSON schema.
        required: required body fields.
    """

    name: str
    event: EventType
    summary: str
    fields: dict[str, dict[str, Any]]
    required: tuple[str, ...] = ()


_REASON = {"type": "string", "maxLength": 2000}
_NEED_REASON = {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": r"\S"}
_UNIT = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_DECISION = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": r"\S"}
_BASIS = {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": r"\S"}

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("transfer", EventType.TRANSFER, "Transfer (转送) to the unit with authority",
               {"to_unit_id": _UNIT, "reason": _REASON}, ("to_unit_id",)),
    ActionSpec("assign", EventType.ASSIGN, "Assign (交办) with a report deadline",
               {"to_unit_id": _UNIT, "due": {"type": "string", "format": "date"},
                "reason": _REASON}, ("to_unit_id",)),
    ActionSpec("divert", EventType.DIVERT, "Divert to a legal procedure (Art. 31)",
               {"reason": _NEED_REASON}, ("reason",)),
    ActionSpec("not-accept", EventType.NOT_ACCEPT, "Refuse in writing (不予受理)",
               {"reason": _NEED_REASON}, ("reason",)),
    ActionSpec("acknowledge", EventType.RECEIVE, "The receiving unit acknowledges receipt", {}),
    ActionSpec("object", EventType.RETURN, "Object within 5 working days (Art. 23)",
               {"reason": _NEED_REASON}, ("reason",)),
    ActionSpec("accept", EventType.ACCEPT, "Accept (受理); the handling period starts",
               {"reason": _REASON}),
    ActionSpec("extend", EventType.EXTEND, "Extend the handling period (≤30 d, Art. 34)",
               {"days": {"type": "integer", "minimum": 1, "maximum": 30},
                "approved_by": _UNIT, "reason": _NEED_REASON},
               ("days", "approved_by", "reason")),
    ActionSpec("opinion", EventType.ISSUE_OPINION, "Issue the handling opinion",
               {"decision": _DECISION, "legal_basis": _BASIS, "reason": _REASON},
               ("decision", "legal_basis")),
    ActionSpec("review-request", EventType.REQUEST_REVIEW, "Record the petitioner's review "
               "request (≤30 d)", {"reason": _REASON}),
    ActionSpec("review-opinion", EventType.ISSUE_REVIEW_OPINION, "Issue the review opinion",
               {"decision": _DECISION, "legal_basis": _BASIS, "reason": _REASON},
               ("decision", "legal_basis")),
    ActionSpec("rereview-request", EventType.REQUEST_REREVIEW, "Record the petitioner's "
               "re-review request (≤30 d)", {"reason": _REASON}),
    ActionSpec("rereview-opinion", EventType.ISSUE_REREVIEW_OPINION, "Issue the re-review opinion",
               {"decision": _DECISION, "legal_basis": _BASIS, "reason": _REASON},
               ("decision", "legal_basis")),
    ActionSpec("conclude", EventType.CONCLUDE, "Conclude (办结)",
               {"petitioner_waived": {"type": "boolean"}, "reason": _REASON}),
    ActionSpec("clock-stop", EventType.STOP_CLOCK, "Stop the re-review clock (hearing, Art. 36)",
               {"reason": _NEED_REASON}, ("reason",)),
    ActionSpec("clock-resume", EventType.RESUME_CLOCK, "Restart the re-review clock", {}),
    ActionSpec("outcome", EventType.SET_OUTCOME, "Record the outcome (Arts. 31-33)",
               {"outcome": {"type": "string", "enum": [o.value for o in Outcome]},
                "carried_out": {"type": ["boolean", "null"]}, "resolved": {"type": "boolean"},
                "reason": _REASON}, ("outcome", "resolved")),
    ActionSpec("note", EventType.NOTE, "Add a note to the history",
               {"reason": _NEED_REASON}, ("reason",)),
)  # fmt: skip
ACTION_BY_EVENT = {a.event: a.name for a in ACTIONS}


def allowed_actions(state: ItemState) -> list[str]:
    """The action routes that may be used in ``state`` (evaluation is the petitioner's)."""
    return [ACTION_BY_EVENT[e] for e in allowed_events(state) if e in ACTION_BY_EVENT]


async def _approver(request: web.Request, account_id: int, unit_id: int) -> None:
    async with request.app[keys.STORE].transaction() as tx:
        approver = await accounts.get_account(tx, account_id)
    if Role.LEADER not in approver.roles:
        raise ValidationError(f"account {account_id} is not a leader and cannot approve")
    if not in_scope(approver.principal(), unit_id, request.app[keys.STORE].tree):
        raise ValidationError(f"account {account_id} does not lead the handling unit {unit_id}")


async def _apply(
    request: web.Request, spec: ActionSpec, p: Principal, item: items.Item, data: dict[str, Any]
) -> items.Item:
    cal = _calendar(request)
    aid = p.account_id
    reason = text(data, "reason", max_len=2000, required=spec.fields.get("reason") is _NEED_REASON)
    holder = item.handling_unit_id or item.registering_unit_id
    match spec.event:
        case EventType.TRANSFER | EventType.ASSIGN:
            to = integer(data, "to_unit_id", lo=1, hi=MAX_ID)
            assert to is not None
            _unit_id(request, to)
            due = _date(data["due"], "field 'due'") if data.get("due") is not None else None
            if due is not None and due < _today():
                raise ValidationError(f"field 'due' {due} is in the past")
            async with request.app[keys.STORE].transaction() as tx:
                if spec.event is EventType.TRANSFER:
                    return await items.transfer(tx, cal, item.id, to, account_id=aid, reason=reason)
                return await items.assign(
                    tx, cal, item.id, to, due=due, account_id=aid, reason=reason
                )
        case EventType.RECEIVE:
            async with request.app[keys.STORE].transaction() as tx:
                return await items.acknowledge(tx, cal, item.id, account_id=aid)
        case EventType.RETURN:
            async with request.app[keys.STORE].transaction() as tx:
                return await items.object_to(tx, cal, item.id, reason=reason, account_id=aid)
        case EventType.EXTEND:
            days = integer(data, "days", lo=1, hi=30)
            approved_by = integer(data, "approved_by", lo=1, hi=MAX_ID)
            assert days is not None
            assert approved_by is not None
            await _approver(request, approved_by, holder)
            async with request.app[keys.STORE].transaction() as tx:
                return await items.extend(
                    tx, cal, item.id, days=days, approved_by=approved_by, reason=reason
                )
        case EventType.STOP_CLOCK:
            async with request.app[keys.STORE].transaction() as tx:
                return await items.stop_clock(tx, cal, item.id, reason=reason, account_id=aid)
        case EventType.RESUME_CLOCK:
            async with request.app[keys.STORE].transaction() as tx:
                return await items.resume_clock(tx, cal, item.id, account_id=aid)
        case EventType.SET_OUTCOME:
            outcome = Outcome(str(choice(data, "outcome", Outcome)))
            carried = _bool(data, "carried_out", default=None)
            resolved = _bool(data, "resolved", default=None)
            if resolved is None:
                raise ValidationError("field 'resolved' is required")
            async with request.app[keys.STORE].transaction() as tx:
                return await items.set_outcome(
                    tx,
                    cal,
                    item.id,
                    outcome=outcome,
                    carried_out=carried,
                    resolved=resolved,
                    account_id=aid,
                    reason=reason,
                )
        case _:
            payload: dict[str, Any] = {}
            if "decision" in spec.fields:
                payload["decision"] = text(data, "decision", max_len=MAX_TEXT)
                payload["legal_basis"] = text(data, "legal_basis", max_len=2000)
            if spec.event is EventType.CONCLUDE:
                payload["petitioner_waived"] = bool(_bool(data, "petitioner_waived"))
            async with request.app[keys.STORE].transaction() as tx:
                return await items.apply_event(
                    tx, cal, item.id, spec.event, account_id=aid, reason=reason, data=payload
                )


def _action_handler(spec: ActionSpec) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        # Lifecycle moves are for the unit holding the item now (or the units above it).
        p, item = await load_item(request, Action.EDIT_ITEM, holder_only=True)
        data = await read_json(request)
        try:
            updated = await _apply(request, spec, p, item, data)
        except InvalidTransition as exc:
            return web.json_response(
                {
                    "error": {
                        "code": exc.code,
                        "message": str(exc),
                        "state": item.state.value,
                        "allowed_actions": allowed_actions(item.state),
                    }
                },
                status=409,
            )
        async with request.app[keys.STORE].transaction() as tx:
            await accounts.audit(
                tx,
                p.ref,
                f"item_{spec.name.replace('-', '_')}",
                "item",
                item.id,
                remote=remote_of(request),
                detail={"from": item.state.value, "to": updated.state.value},
            )
        return web.json_response(item_json(updated))

    handler.__name__ = f"item_{spec.name.replace('-', '_')}"
    handler.__doc__ = spec.summary
    return handler


for _spec in ACTIONS:
    routes.post(f"/api/items/{{item_id}}/{_spec.name}")(_action_handler(_spec))


# ---- co-handlers, handlers, sessions ---------------------------------------------------------


@routes.post("/api/items/{item_id}/co-handlers")
async def add_co_handler(request: web.Request) -> web.Response:
    """Add a co-handling unit (协办)."""
    p, item = await load_item(request, Action.EDIT_ITEM, holder_only=True)
    data = await read_json(request)
    unit_id = integer(data, "unit_id", lo=1, hi=MAX_ID)
    assert unit_id is not None
    _unit_id(request, unit_id)
    async with request.app[keys.STORE].transaction() as tx:
        updated = await items.add_co_handler(tx, item.id, unit_id)
        await accounts.audit(
            tx,
            p.ref,
            "item_co_handler",
            "item",
            item.id,
            remote=remote_of(request),
            detail={"unit": unit_id},
        )
    return web.json_response(item_json(updated))


@routes.put("/api/items/{item_id}/handlers/{account_id}")
async def set_handler(request: web.Request) -> web.Response:
    """Make an account a handler of the item, or record its recusal (Art. 28)."""
    p, item = await load_item(request, Action.EDIT_ITEM)
    try:
        account_id = int(request.match_info["account_id"])
    except ValueError as exc:
        raise NotFound(f"account {request.match_info['account_id'][:20]!r} not found") from exc
    data = await read_json(request)
    recused = bool(_bool(data, "recused"))
    reason = text(data, "reason", max_len=2000, required=recused)
    async with request.app[keys.STORE].transaction() as tx:
        await accounts.get_account(tx, account_id)
        updated = await items.set_handler(tx, item.id, account_id, recused=recused, reason=reason)
        await accounts.audit(
            tx,
            p.ref,
            "item_recuse" if recused else "item_handler",
            "item",
            item.id,
            remote=remote_of(request),
            detail={"account": account_id, "reason": reason},
        )
    return web.json_response(item_json(updated))


@routes.get("/api/items/{item_id}/sessions")
async def item_sessions(request: web.Request) -> web.Response:
    """The sessions (visits, mediations, consultations) linked to the item."""
    p, item = await load_item(request, Action.VIEW_ITEM)
    async with request.app[keys.STORE].transaction() as tx:
        ids = await items.item_session_ids(tx, item.id)
        found = [await sessions.get_session(tx, sid) for sid in ids]
        await accounts.audit(
            tx, p.ref, "view_item_sessions", "item", item.id, remote=remote_of(request)
        )
    return web.json_response(
        {"sessions": [session_json(s, with_participants=False) for s in found]}
    )


@routes.post("/api/items/{item_id}/sessions")
async def link_session(request: web.Request) -> web.Response:
    """Link a session to the item (as ``session.link_item`` does over the WebSocket)."""
    p, item = await load_item(request, Action.EDIT_ITEM)
    data = await read_json(request)
    session_id = text(data, "session_id", max_len=32)
    if not session_id.isalnum():
        raise NotFound(f"session {session_id!r} not found")
    store = request.app[keys.STORE]
    async with store.transaction() as tx:
        s = await sessions.get_session(tx, session_id)
    await authorize(request, Action.MODERATE_SESSION, s.target())
    async with store.transaction() as tx:
        await sessions.update_session(tx, s.id, item_id=item.id)
        await sessions.log_event(tx, s.id, "item_linked", actor=p.ref, data={"item": item.id})
        await accounts.audit(
            tx,
            p.ref,
            "item_link_session",
            "item",
            item.id,
            remote=remote_of(request),
            detail={"session": s.id},
        )
    return web.json_response({"session_id": s.id, "item_id": item.id})


# ---- written notices -------------------------------------------------------------------------

NOTICE_KINDS = ("acceptance", "non-acceptance", "extension", "opinion")
_OPINION_EVENTS = {
    EventType.ISSUE_OPINION: (
        "信访事项处理意见书",
        "如对本处理意见不服，可以自收到本意见书之日起30日内，请求原办理机关的上一级机关复查。",
    ),
    EventType.ISSUE_REVIEW_OPINION: (
        "信访事项复查意见书",
        "如对本复查意见不服，可以自收到本意见书之日起30日内，向复查机关的上一级机关请求复核。",
    ),
    EventType.ISSUE_REREVIEW_OPINION: (
        "信访事项复核意见书",
        "本复核意见为最终意见。您以同一事实和理由提出的信访事项，信访工作机构和其他机关、单位"
        "不再受理。",
    ),
}


def _cn_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def notice_html(
    kind: str,
    item: items.Item,
    entries: Sequence[items.ItemHistoryEntry],
    unit_name: Callable[[int | None], str],
    approver_name: str = "",
) -> str:
    """The printable written notice of ``kind`` for the item, from its history.

    Raises:
        NotFound: the item has no such notice yet (e.g. not accepted).
    """

    def last(*types: EventType) -> items.ItemHistoryEntry:
        for e in reversed(entries):
            if e.type in types:
                return e
        raise NotFound(f"item {item.id} has no {kind} notice: no {types[0].value} in its history")

    registered_on = _cn_date(local_date(item.registered_at))
    holder = unit_name(item.handling_unit_id or item.registering_unit_id)
    code = format_code(item.lookup_code)
    names = "、".join(pt.name for pt in item.petitioners)
    recipient = "信访人" if item.anonymous or not names else names
    values: dict[str, object] = {
        "lookup_code": code,
        "registered_on": registered_on,
        "request": item.request,
        "issuer": holder,
    }
    articles = ARTICLES[item.rule_set]
    if kind == "acceptance":
        e = last(EventType.ACCEPT)
        title = "信访事项受理告知书"
        accepted = local_date(e.at)
        due = item.due_on if item.state is ItemState.ACCEPTED else None
        values |= {
            "accepted_on": _cn_date(accepted),
            "opinion_days": 60,
            "due_on": _cn_date(due) if due else _cn_date(accepted + dt.timedelta(days=60)),
            "article": articles["opinion"],
        }
        body = render("notice_acceptance.html", values)
        issued = accepted
    elif kind == "non-acceptance":
        e = last(EventType.NOT_ACCEPT)
        title = "信访事项不予受理告知书"
        values |= {
            "reason": e.reason,
            "advice": "对依法应当通过诉讼、仲裁、行政复议等法定途径解决的请求，请依照有关法律、"
            "行政法规规定的程序向有关机关提出。",
        }
        body = render("notice_non_acceptance.html", values)
        issued = local_date(e.at)
    elif kind == "extension":
        e = last(EventType.EXTEND)
        title = "信访事项延期办理告知书"
        accepted_e = last(EventType.ACCEPT)
        values |= {
            "accepted_on": _cn_date(local_date(accepted_e.at)),
            "approver": approver_name or str(e.data.get("approved_by", "")),
            "days": e.data.get("days", ""),
            "due_on": _cn_date(item.due_on) if item.due_on else "（见办理意见）",
            "reason": e.reason,
            "article": articles["opinion"],
        }
        body = render("notice_extension.html", values)
        issued = local_date(e.at)
    elif kind == "opinion":
        e = last(*_OPINION_EVENTS)
        title, advice = _OPINION_EVENTS[e.type]
        values |= {
            "title": title,
            "facts": item.facts or "（见卷宗）",
            "decision": e.data.get("decision", ""),
            "legal_basis": e.data.get("legal_basis", ""),
            "review_advice": advice,
        }
        body = render("notice_opinion.html", values)
        issued = local_date(e.at)
    else:
        raise NotFound(f"no notice kind {kind!r}; kinds: {', '.join(NOTICE_KINDS)}")
    return render(
        "notice.html",
        {
            "kind": kind,
            "title": title,
            "lookup_code": code,
            "recipient": recipient,
            "body": Safe(body),
            "issuer": holder,
            "issued_on": _cn_date(issued),
        },
    )


@routes.get("/api/items/{item_id}/notices/{kind}")
async def notice(request: web.Request) -> web.Response:
    """A written notice (acceptance, non-acceptance, extension, opinion) as printable HTML."""
    kind = request.match_info["kind"]
    if kind not in NOTICE_KINDS:
        raise NotFound(f"no notice kind {kind[:40]!r}; kinds: {', '.join(NOTICE_KINDS)}")
    p, item = await load_item(request, Action.VIEW_ITEM)
    store = request.app[keys.STORE]
    async with store.transaction() as tx:
        entries = await items.item_history(tx, item.id)
        approver = ""
        ext = [e for e in entries if e.type is EventType.EXTEND]
        if kind == "extension" and ext:
            approver_id = ext[-1].data.get("approved_by")
            if isinstance(approver_id, int):
                approver = (await accounts.get_account(tx, approver_id)).display_name
        await accounts.audit(
            tx,
            p.ref,
            "item_notice",
            "item",
            item.id,
            remote=remote_of(request),
            detail={"kind": kind},
        )

    def name(unit_id: int | None) -> str:
        return _unit_name(request, unit_id)

    body = await asyncio.to_thread(notice_html, kind, item, entries, name, approver)
    return web.Response(text=body, content_type="text/html", charset="utf-8")


# ---- public: progress and evaluation ---------------------------------------------------------

_EVAL_FAILED = "the lookup code and the phone digits do not match an item"


@routes.get("/api/public/progress")
async def public_progress(request: web.Request) -> web.Response:
    """Progress by lookup code, for the petitioner: states and dates, no personal data."""
    code = request.query.get("code", "")[:40]
    async with request.app[keys.STORE].transaction() as tx:
        pp = await items.public_progress(tx, code)
    return web.json_response(progress_json(pp))


@routes.post("/api/public/evaluate")
async def public_evaluate(request: web.Request) -> web.Response:
    """The petitioner rates acceptance or handling with the code and 4 phone digits.

    A wrong code and wrong digits give the same 404; repeated failures for one code or from
    one address are refused for a while (429) whatever the input.
    """
    data = await read_json(request)
    raw_code = text(data, "code", max_len=40)
    digits = text(data, "phone_last4", max_len=8)
    stage_raw = choice(data, "stage", ("acceptance", "handling"))
    stage: Literal["acceptance", "handling"] = (
        "acceptance" if stage_raw == "acceptance" else "handling"
    )
    satisfied = _bool(data, "satisfied", default=None)
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
                tx, _calendar(request), code, digits, stage=stage, satisfied=satisfied
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
    return web.json_response(progress_json(pp))


# ---- attachments -----------------------------------------------------------------------------

_UPLOAD_CHUNK = 256 * 1024


def attachment_json(a: items.AttachmentInfo) -> dict[str, Any]:
    """The wire form of an attachment (no server path)."""
    return {
        "id": a.id,
        "item_id": a.item_id,
        "name": a.name,
        "content_type": a.content_type,
        "size": a.size,
        "sha256": a.sha256,
        "added_by": a.added_by,
        "added_at": a.added_at.isoformat(),
    }


def _attachments_dir(request: web.Request) -> Path:
    return request.app[keys.SETTINGS].data_dir / "attachments"


async def _upload_source(request: web.Request) -> tuple[str, AsyncIterator[bytes]]:
    """The uploaded file's name and its bytes, from a multipart form or a raw body."""
    if request.content_type.startswith("multipart/"):
        try:
            reader = await request.multipart()
            part = await reader.next()
            while part is not None and not (
                isinstance(part, BodyPartReader) and part.name == "file" and part.filename
            ):
                part = await reader.next()
        except (ValueError, AssertionError, KeyError) as exc:
            raise ValidationError(f"malformed multipart body: {exc}") from exc
        if part is None:
            raise ValidationError("multipart body has no part 'file' with a filename")
        file_part = part

        async def parts() -> AsyncIterator[bytes]:
            while chunk := await file_part.read_chunk(_UPLOAD_CHUNK):
                yield chunk

        # aiohttp's client (and some others) percent-encode the name; browsers send UTF-8
        name = unquote(file_part.filename or "")
        bad = unstorable_char(name, "the file name")
        if bad is not None:
            raise ValidationError(str(bad))
        return name, parts()
    name = request.query.get("filename", "")
    if not name:
        raise ValidationError("a raw upload needs the query parameter 'filename'")

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(_UPLOAD_CHUNK):
            yield chunk

    return name, body()


@routes.post("/api/upload/items/{item_id}/attachments")
async def upload_attachment(request: web.Request) -> web.Response:
    """Attach a file (multipart part ``file``, or the raw body with ``?filename=``).

    Images, PDF/OFD, office documents, audio and video up to 20 MiB; the type is checked
    against the file's first bytes. A refused upload leaves nothing on disk or in the records.
    """
    p, item = await load_item(request, Action.EDIT_ITEM)
    limit = items.MAX_ATTACHMENT_BYTES
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        # (multipart framing adds a little; the file itself is counted while reading)
        return error_response(413, "too_large", f"attachments are limited to {limit} bytes")
    directory = _attachments_dir(request)
    try:
        name, chunks = await _upload_source(request)
        stored = await items.store_attachment_file(directory, item.id, name, chunks)
    except items.AttachmentTooLarge as exc:
        return error_response(413, exc.code, str(exc))
    except items.AttachmentTypeRefused as exc:
        return error_response(415, exc.code, str(exc))
    except ValueError as exc:  # aiohttp's multipart reader on a malformed body
        raise ValidationError(f"malformed upload: {exc}") from exc
    try:
        async with request.app[keys.STORE].transaction() as tx:
            info = await items.add_attachment(tx, stored, account_id=p.account_id)
            await accounts.audit(
                tx,
                p.ref,
                "attachment_upload",
                "item",
                item.id,
                remote=remote_of(request),
                detail={"attachment": info.id, "name": info.name, "sha256": info.sha256},
            )
    except BaseException:
        await asyncio.shield(items.discard_attachment_file(directory, stored))
        raise
    return web.json_response(attachment_json(info), status=201)


@routes.get("/api/items/{item_id}/attachments")
async def list_attachments(request: web.Request) -> web.Response:
    """The item's attachments; audit-logged like every read of the item."""
    p, item = await load_item(request, Action.VIEW_ITEM)
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.list_attachments(tx, item.id)
        await accounts.audit(
            tx, p.ref, "view_item_attachments", "item", item.id, remote=remote_of(request)
        )
    return web.json_response({"attachments": [attachment_json(a) for a in found]})


@routes.get("/api/items/{item_id}/attachments/{attachment_id}")
async def download_attachment(request: web.Request) -> web.StreamResponse:
    """The file, as an attachment download; scope-checked like the item and audit-logged."""
    p, item = await load_item(request, Action.VIEW_ITEM)
    raw_id = request.match_info["attachment_id"]
    if not raw_id.isdigit() or int(raw_id) > MAX_ID:
        raise NotFound(f"item {item.id} has no attachment {raw_id[:20]!r}")
    async with request.app[keys.STORE].transaction() as tx:
        info = await items.get_attachment(tx, item.id, int(raw_id))
        await accounts.audit(
            tx,
            p.ref,
            "download_attachment",
            "item",
            item.id,
            remote=remote_of(request),
            detail={"attachment": info.id, "name": info.name},
        )
    path = _attachments_dir(request) / info.relative_path
    if not await asyncio.to_thread(path.is_file):
        raise NotFound(f"attachment {info.id} of item {item.id}: the file is missing")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": info.content_type,
            "Content-Disposition": "attachment; filename*=UTF-8''" + quote(info.name, safe=""),
            "X-Content-Type-Options": "nosniff",
        },
    )


# ---- backlog cases ---------------------------------------------------------------------------


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
    unit_ids = [_unit_id(request, u) for u in unit_ids_raw]
    raw_due = data.get("plan_due_on")
    plan_due_on = None if raw_due is None else _date(raw_due, "field 'plan_due_on'")
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
    today = _today()
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
                    "due_on": _iso(item.due_on),
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
            unit_ids=None if mine else _scope_units(request, p, None),
        )
    return web.json_response({"cases": await _case_summaries(request, p, cases)})


@routes.get("/api/backlog/mine")
async def my_backlog_page(request: web.Request) -> web.Response:
    """The leader's own cases on a phone-sized HTML page."""
    p = require_official(request)
    async with request.app[keys.STORE].transaction() as tx:
        cases = await items.list_backlog_cases(tx, leader_account_id=p.account_id)
    summaries = await _case_summaries(request, p, cases)
    blocks = []
    for c in summaries:
        late = (
            f'<p class="late">缺少月度进展：{escape(c["missing_count"])} 个月</p>'
            if c["missing_count"]
            else '<p class="muted">月度进展齐全</p>'
        )
        blocks.append(
            f'<section class="case"><h2><span class="code">{escape(c["lookup_code"])}</span> '
            f"{escape(c['state_label'])}</h2><p>{escape(c['request'])}</p>"
            f'<p class="muted">期限：{escape(c["due_on"] or "—")}　'
            f"工作专班：{escape(c['team'])}</p>"
            f"{late}</section>"
        )
    body = render(
        "backlog_mine.html",
        {"leader": p.name, "count": len(summaries), "cases": Safe("".join(blocks))},
    )
    return web.Response(text=body, content_type="text/html", charset="utf-8")


def attention_json(request: web.Request, a: items.BacklogAttention, code: str) -> dict[str, Any]:
    """The wire form of a backlog case needing a unit's attention."""
    return {
        "case_id": a.case_id,
        "item_id": a.item_id,
        "lookup_code": code,
        "unit_id": a.unit_id,
        "unit_name": _unit_name(request, a.unit_id),
        "leader_account_id": a.leader_account_id,
        "plan_due_on": _iso(a.plan_due_on),
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
        await _require_unit_scope(request, unit_id, "backlog_attention")
    units = _scope_units(request, p, unit_id)
    today = _query_date(request, "as_of") or _today()
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
    due = None if raw is None else _date(raw, "field 'plan_due_on'")
    async with request.app[keys.STORE].transaction() as tx:
        updated = await items.set_plan_due(tx, case.id, due)
        await accounts.audit(
            tx,
            p.ref,
            "backlog_plan_due",
            "backlog",
            str(case.id),
            remote=remote_of(request),
            detail={"plan_due_on": _iso(due)},
        )
    return web.json_response(case_json(updated))


@routes.get("/api/backlog/{case_id}")
async def get_backlog(request: web.Request) -> web.Response:
    """A backlog case with its progress entries and missing months; audit-logged."""
    p, case, item = await _load_case(request)
    async with request.app[keys.STORE].transaction() as tx:
        entries = await items.progress_entries(tx, case.id)
        missing = await items.missing_months(tx, case.id, through=_today())
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
        }
    )


@routes.get("/api/backlog/{case_id}/missing")
async def backlog_missing(request: web.Request) -> web.Response:
    """Per involved unit, the months with no progress entry (through a day, default today)."""
    _p, case, _item = await _load_case(request)
    through = _query_date(request, "through") or _today()
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
    p = await _require_unit_scope(request, unit_id, "backlog_progress")
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


# ---- statistics and the annual report --------------------------------------------------------


def _rate_json(r: statistics.Rate) -> dict[str, Any]:
    return {
        "numerator": r.numerator,
        "denominator": r.denominator,
        "percent": None if r.percent is None else float(r.percent),
    }


def _breakdown_json(b: statistics.Breakdown) -> dict[str, Any]:
    return {
        "name": b.name,
        "counts": dict(b.counts),
        "sum": b.sum,
        "total": b.total,
        "total_name": b.total_name,
        "mismatch": b.mismatch(),
    }


def report_json(r: statistics.AnnualReport) -> dict[str, Any]:
    """The wire form of the statistics of a period."""
    return {
        "start": r.start.isoformat(),
        "end": r.end.isoformat(),
        "unit_count": r.unit_count,
        "received": r.received,
        "concluded": r.concluded,
        "in_progress": r.in_progress,
        "closed_otherwise": r.closed_otherwise,
        "transfers": r.transfers,
        "assignments": r.assignments,
        "rates": {
            "completion": _rate_json(r.completion_rate),
            "timely_acceptance": _rate_json(r.timely_acceptance_rate),
            "on_time_completion": _rate_json(r.on_time_completion_rate),
            "satisfaction": _rate_json(r.satisfaction_rate),
            "participation": _rate_json(r.participation_rate),
        },
        "from_above": [
            {
                "level": lf.level.value,
                "assigned": lf.assigned,
                "led_by_other_unit": lf.led_by_other_unit,
                "resolved": lf.resolved,
                "resolution_rate": _rate_json(lf.resolution_rate),
            }
            for lf in r.from_above
        ],
        "by_channel": _breakdown_json(r.by_channel),
        "by_online_platform": _breakdown_json(r.by_online_platform),
        "by_type": _breakdown_json(r.by_type),
        "by_state": _breakdown_json(r.by_state),
        "by_category": _breakdown_json(r.by_category),
        "by_subject_unit": _breakdown_json(r.by_subject_unit),
        "top_categories": [[k, n] for k, n in r.top_categories],
        "top_subject_units": [[k, n] for k, n in r.top_subject_units],
        "mismatches": list(r.mismatches),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class _StatsQuery:
    start: dt.date
    end: dt.date
    unit_id: int | None
    unit_ids: list[int] | None
    by: Literal["registering", "handling"]


async def _stats_query(request: web.Request) -> tuple[Principal, _StatsQuery]:
    p = require_official(request)
    year = query_int(request, "year", lo=2000, hi=2100, default=0) or None
    start = _query_date(request, "start")
    end = _query_date(request, "end")
    if year is not None:
        start = start or dt.date(year, 1, 1)
        end = end or dt.date(year + 1, 1, 1)
    if start is None or end is None:
        raise ValidationError("give 'year', or 'start' and 'end' (YYYY-MM-DD, end exclusive)")
    if not start < end or (end - start).days > 3700:
        raise ValidationError(f"period {start} .. {end}: start before end, at most 10 years")
    unit_id = query_int(request, "unit_id", lo=1, hi=MAX_ID, default=0) or None
    if unit_id is not None:
        _unit_id(request, unit_id)
    assert p.unit_id is not None
    await authorize(request, Action.VIEW_STATS, UnitTarget(unit_id or p.unit_id))
    by_raw = request.query.get("by", "registering")
    if by_raw not in ("registering", "handling"):
        raise ValidationError(f"query parameter 'by'={by_raw!r:.20}: registering or handling")
    by: Literal["registering", "handling"] = "handling" if by_raw == "handling" else "registering"
    return p, _StatsQuery(start, end, unit_id, _scope_units(request, p, unit_id), by)


async def _report(request: web.Request) -> tuple[Principal, _StatsQuery, statistics.AnnualReport]:
    p, q = await _stats_query(request)
    async with request.app[keys.STORE].transaction() as tx:
        report = await statistics.annual_report(
            tx, start=q.start, end=q.end, unit_ids=q.unit_ids, by=q.by
        )
        await accounts.audit(
            tx,
            p.ref,
            "view_stats",
            "unit",
            str(q.unit_id or ""),
            remote=remote_of(request),
            detail={"start": q.start.isoformat(), "end": q.end.isoformat()},
        )
    return p, q, report


@routes.get("/api/stats")
async def stats(request: web.Request) -> web.Response:
    """Statistics of a period for a unit subtree (the whole district for the bureau)."""
    _p, q, report = await _report(request)
    body = report_json(report)
    body["unit_id"] = q.unit_id
    body["by"] = q.by
    async with request.app[keys.STORE].transaction() as tx:
        held = await sessions.session_statistics(
            tx,
            start=dt.datetime.combine(q.start, dt.time(), CHINA_TZ),
            end=dt.datetime.combine(q.end, dt.time(), CHINA_TZ),
            unit_ids=q.unit_ids,
        )
    body["sessions"] = dataclasses.asdict(held)
    return web.json_response(body)


@routes.get("/api/stats/csv")
async def stats_csv(request: web.Request) -> web.Response:
    """The statistics as CSV (UTF-8 with a byte-order mark, for spreadsheet programs)."""
    _p, q, report = await _report(request)
    body = await asyncio.to_thread(statistics.report_csv, report)
    name = f"petition-stats-{q.start.isoformat()}-{q.end.isoformat()}.csv"
    return web.Response(
        body=("\ufeff" + body).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


_CHANNEL_ZH = {
    "letter": "来信",
    "visit": "来访",
    "online": "网上信访",
    "phone": "电话",
    "fax": "传真",
    "video": "视频信访",
}
_TYPE_ZH = {"suggestion": "建议意见", "accusation": "检举控告", "complaint": "申诉求决"}
_LEVEL_ZH = {"central": "中央", "provincial": "省级", "municipal": "市级"}


def report_html(
    report: statistics.AnnualReport, scope: str, unit_name: Callable[[int | None], str]
) -> str:
    """The printable report (Chinese), mismatches shown first."""
    last_day = report.end - dt.timedelta(days=1)
    if (
        report.start.month == 1
        and report.start.day == 1
        and report.end == dt.date(report.start.year + 1, 1, 1)
    ):
        title = f"{report.start.year}年度信访工作报告"
    else:
        title = "信访工作统计报告"

    def counts(b: statistics.Breakdown, names: dict[str, str] | None = None) -> Safe:
        rows: list[list[object]] = [[(names or {}).get(k, k), n] for k, n in b.counts.items()]
        rows.append([f"合计（{b.total_name} 总数 {b.total}）", b.sum])
        return table(rows, head=("项目", "件数"))

    checks: list[str] = []
    for m in report.mismatches:
        checks.append(f'<p class="mismatch">不一致：{escape(m)}</p>')
    if not checks:
        checks.append('<p class="ok">各分项之和均等于总数。</p>')
    rates = [
        ("办结率", report.completion_rate),
        ("按期受理率", report.timely_acceptance_rate),
        ("按期办结率", report.on_time_completion_rate),
        ("满意率", report.satisfaction_rate),
        ("参评率", report.participation_rate),
    ]
    subject_names = {k: unit_name(int(k)) or k for k in report.by_subject_unit.counts}
    return render(
        "report.html",
        {
            "title": title,
            "period": f"{_cn_date(report.start)}至{_cn_date(last_day)}",
            "scope": scope,
            "generated_at": utcnow()
            .astimezone(dt.timezone(dt.timedelta(hours=8)))
            .strftime("%Y-%m-%d %H:%M"),
            "checks": Safe("".join(checks)),
            "totals": table(
                [
                    ["受理信访事项（收到）", report.received],
                    ["已办结", report.concluded],
                    ["正在办理", report.in_progress],
                    ["其他方式结束（导入法定途径、不予受理）", report.closed_otherwise],
                    ["转送", report.transfers],
                    ["交办", report.assignments],
                ],
                head=("项目", "件数"),
            ),
            "rates": table(
                [[n, str(r), r.numerator, r.denominator] for n, r in rates],
                head=("比率", "数值", "分子", "分母"),
            ),
            "levels": table(
                [
                    [
                        _LEVEL_ZH.get(lf.level.value, lf.level.value),
                        lf.assigned,
                        lf.led_by_other_unit,
                        lf.resolved,
                        str(lf.resolution_rate),
                    ]
                    for lf in report.from_above
                ],
                head=("来源", "交办", "其中他单位牵头（不计入）", "已化解", "化解率"),
            ),
            "by_channel": counts(report.by_channel, _CHANNEL_ZH),
            "by_platform": counts(report.by_online_platform),
            "by_type": counts(report.by_type, _TYPE_ZH),
            "by_state": counts(report.by_state, {s.value: STATE_LABELS_ZH[s] for s in ItemState}),
            "top_categories": table(report.top_categories, head=("类别", "件数")),
            "top_units": table(
                [[subject_names.get(k, k), n] for k, n in report.top_subject_units],
                head=("单位", "件数"),
            ),
        },
    )


@routes.get("/api/stats/report")
async def stats_report(request: web.Request) -> web.Response:
    """The annual (or any period's) report as printable HTML."""
    p, q, report = await _report(request)
    scope = _unit_name(request, q.unit_id) if q.unit_id else _unit_name(request, p.unit_id)
    if q.unit_ids is None:
        scope = "全区"

    def name(unit_id: int | None) -> str:
        return _unit_name(request, unit_id)

    body = await asyncio.to_thread(report_html, report, scope, name)
    return web.Response(text=body, content_type="text/html", charset="utf-8")


# ---- the OpenAPI document --------------------------------------------------------------------


@routes.get("/api/openapi.json")
async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of every /api route (public: it holds no data)."""
    from web.openapi import build_document  # noqa: PLC0415  (web.openapi imports this module)

    return web.json_response(build_document())
