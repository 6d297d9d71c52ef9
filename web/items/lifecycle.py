"""Lifecycle action routes, co-handlers, handlers and linked sessions."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from aiohttp import web

from config.errors import AccessDenied, InvalidTransition, NotFound, ValidationError
from records import accounts, items, sessions
from records.deadlines import CHINA_TZ
from records.enums import Role
from records.item_models import ExternalOrganKind, Outcome
from records.lifecycle import (
    EventType,
)
from records.policy import Action, in_scope
from records.principals import Principal
from web import keys, rest, wire
from web.auth import authorize, remote_of
from web.input import choice, integer, read_json, text
from web.items.actions import ACTIONS, ActionSpec, NeedReason, allowed_actions
from web.items.common import (
    MAX_ID,
    MAX_TEXT,
    boolean,
    calendar_of,
    existing_unit,
    load_item,
    local_today,
    parse_date,
)
from web.items.wire import Item
from web.rest import DB_ID, ID32, SESSION_ID, Int, ItemPath, Text, operation, parse_body, reply

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _approver(request: web.Request, account_id: int, unit_id: int) -> None:
    async with request.app[keys.STORE].transaction() as tx:
        approver = await accounts.get_account(tx, account_id)
    if Role.LEADER not in approver.roles:
        raise ValidationError(f"account {account_id} is not a leader and cannot approve")
    if not in_scope(approver.principal(), unit_id, request.app[keys.STORE].tree):
        raise ValidationError(f"account {account_id} does not lead the handling unit {unit_id}")


async def _receiving_handler(request: web.Request, account_id: int, to_unit_id: int) -> None:
    """The named handler must be an account of the receiving unit (or a unit below it)."""
    async with request.app[keys.STORE].transaction() as tx:
        handler = await accounts.get_account(tx, account_id)
    if not request.app[keys.STORE].tree.within(handler.unit_id, to_unit_id):
        raise ValidationError(
            f"handler account {account_id} (unit {handler.unit_id}) is not of the receiving "
            f"unit {to_unit_id}"
        )


async def _assigning_body(
    request: web.Request, p: Principal, item: items.Item, holder: int
) -> None:
    """Only the body that assigned the item answers its completion report.

    Assigned within the district: the assigning unit or a unit above it. Assigned from above
    the district: a unit above the handling unit records the answer of that body. Never the
    handling unit (or a unit below it) for its own report.
    """
    tree = request.app[keys.STORE].tree
    if p.unit_id is None:
        raise AccessDenied("only an official of the assigning body answers a completion report")
    async with request.app[keys.STORE].transaction() as tx:
        assigner = await items.assigning_unit(tx, item.id)
    if tree.within(p.unit_id, holder):
        raise AccessDenied(
            f"unit {p.unit_id} handles item {item.id}: its completion report is confirmed "
            "by the assigning body, not by the unit that reported it"
        )
    if assigner is not None and not tree.within(assigner, p.unit_id):
        raise AccessDenied(
            f"item {item.id} was assigned by unit {assigner}: unit {p.unit_id} cannot answer "
            "its completion report"
        )


def _made_at(data: dict[str, Any]) -> dt.datetime | None:
    """The day a request was made (field ``at``), not the day it is typed in; ``None``: now.

    The time of day of a past request is not known: noon China time stands for it.

    Raises:
        ValidationError: not a date, or after today.
    """
    if data.get("at") is None:
        return None
    day = parse_date(data["at"], "field 'at'")
    today = local_today()
    if day > today:
        raise ValidationError(
            f"field 'at' {day} is after today {today}: a request is dated when made"
        )
    if day == today:
        return None
    return dt.datetime.combine(day, dt.time(12), CHINA_TZ)


class WindowClosed(ValidationError):
    """A review or re-review request made after the petitioner's 30 days (Arts. 35, 36)."""

    code = "window_closed"


def _window_open(item: items.Item, event: EventType, day: dt.date) -> None:
    """Refuse a request made after the window the item's current deadline names.

    The lifecycle checks the same against the replayed history; this says it with its own
    code, so the page can say it plainly with the window's last day.

    Raises:
        WindowClosed: ``day`` is after the window's last day.
    """
    what = "review_request" if event is EventType.REQUEST_REVIEW else "rereview_request"
    if item.due_what == what and item.due_on is not None and day > item.due_on:
        raise WindowClosed(
            f"'{event.value}' on {day} is too late: the window ended on {item.due_on} "
            f"({item.due_article or what})"
        )


async def _apply(
    request: web.Request, spec: ActionSpec, p: Principal, item: items.Item, data: dict[str, Any]
) -> items.Item:
    cal = calendar_of(request)
    aid = p.account_id
    reason = text(data, "reason", max_len=2000, required=issubclass(spec.body, NeedReason))
    holder = item.handling_unit_id or item.registering_unit_id
    match spec.event:
        case EventType.TRANSFER | EventType.ASSIGN:
            to = integer(data, "to_unit_id", lo=1, hi=MAX_ID)
            assert to is not None
            existing_unit(request, to)
            due = parse_date(data["due"], "field 'due'") if data.get("due") is not None else None
            if due is not None and due < local_today():
                raise ValidationError(f"field 'due' {due} is in the past")
            handler = integer(data, "handler_account_id", lo=1, hi=MAX_ID, required=False)
            if handler is not None:
                await _receiving_handler(request, handler, to)
            async with request.app[keys.STORE].transaction() as tx:
                if spec.event is EventType.TRANSFER:
                    return await items.transfer(
                        tx,
                        cal,
                        item.id,
                        to,
                        account_id=aid,
                        reason=reason,
                        handler_account_id=handler,
                    )
                return await items.assign(
                    tx,
                    cal,
                    item.id,
                    to,
                    due=due,
                    account_id=aid,
                    reason=reason,
                    handler_account_id=handler,
                )
        case EventType.TRANSFER_OUT:
            organ = text(data, "organ", max_len=200)
            kind = ExternalOrganKind(str(choice(data, "organ_kind", ExternalOrganKind)))
            async with request.app[keys.STORE].transaction() as tx:
                return await items.transfer_out(
                    tx, cal, item.id, organ=organ, organ_kind=kind, account_id=aid, reason=reason
                )
        case EventType.ACCEPT:
            tree = request.app[keys.STORE].tree
            unit = tree.get(item.registering_unit_id)
            if item.handling_unit_id is None and unit is not None and unit.is_reception:
                raise ValidationError(
                    f"the reception centre {unit.name} registers and routes item {item.id}; "
                    "it cannot accept it on behalf of the competent unit: transfer or assign it"
                )
            async with request.app[keys.STORE].transaction() as tx:
                return await items.accept(
                    tx, cal, item.id, account_id=aid, reason=reason, acting_unit_id=p.unit_id
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
        case EventType.DELIVER:
            delivered = parse_date(data.get("delivered_on"), "field 'delivered_on'")
            async with request.app[keys.STORE].transaction() as tx:
                return await items.deliver(tx, cal, item.id, delivered_on=delivered, account_id=aid)
        case EventType.REQUEST_REVIEW | EventType.REQUEST_REREVIEW:
            made = _made_at(data)
            _window_open(item, spec.event, local_today() if made is None else made.date())
            tree = request.app[keys.STORE].tree
            async with request.app[keys.STORE].transaction() as tx:
                # Art. 35: the review is by the organ one level above the handling unit;
                # Art. 36: the re-review one level above the reviewing organ.
                below: int | None = holder
                if spec.event is EventType.REQUEST_REREVIEW:
                    below = await items.reviewing_unit(tx, item.id)
                unit = tree.get(below) if below is not None else None
                reviewer = unit.parent_id if unit is not None else None
                return await items.apply_event(
                    tx,
                    cal,
                    item.id,
                    spec.event,
                    account_id=aid,
                    at=_made_at(data),
                    reason=reason,
                    data={} if reviewer is None else {"reviewing_unit_id": reviewer},
                )
        case EventType.CONCLUDE_PART:
            decision = text(data, "decision", max_len=MAX_TEXT)
            async with request.app[keys.STORE].transaction() as tx:
                return await items.conclude_part(
                    tx, cal, item.id, decision=decision, account_id=aid, reason=reason
                )
        case EventType.REPORT:
            report = text(data, "report", max_len=MAX_TEXT)
            async with request.app[keys.STORE].transaction() as tx:
                return await items.report_completion(
                    tx, cal, item.id, report=report, account_id=aid
                )
        case EventType.CONFIRM | EventType.RETURN_REPORT:
            await _assigning_body(request, p, item, holder)
            async with request.app[keys.STORE].transaction() as tx:
                if spec.event is EventType.RETURN_REPORT:
                    return await items.return_report(
                        tx, cal, item.id, reason=reason, account_id=aid
                    )
                return await items.confirm_completion(
                    tx,
                    cal,
                    item.id,
                    account_id=aid,
                    petitioner_waived=bool(boolean(data, "petitioner_waived")),
                    reason=reason,
                )
        case EventType.STOP_CLOCK:
            async with request.app[keys.STORE].transaction() as tx:
                return await items.stop_clock(tx, cal, item.id, reason=reason, account_id=aid)
        case EventType.RESUME_CLOCK:
            async with request.app[keys.STORE].transaction() as tx:
                return await items.resume_clock(tx, cal, item.id, account_id=aid)
        case EventType.SET_OUTCOME:
            outcome = Outcome(str(choice(data, "outcome", Outcome)))
            carried = boolean(data, "carried_out", default=None)
            resolved = boolean(data, "resolved", default=None)
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
            if "decision" in spec.body.model_fields:
                payload["decision"] = text(data, "decision", max_len=MAX_TEXT)
                payload["legal_basis"] = text(data, "legal_basis", max_len=2000)
            if spec.event in (EventType.ISSUE_REVIEW_OPINION, EventType.ISSUE_REREVIEW_OPINION):
                payload["by_unit_id"] = p.unit_id
            if spec.event is EventType.CONCLUDE:
                payload["petitioner_waived"] = bool(boolean(data, "petitioner_waived"))
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
        return reply(Item.of(updated, calendar_of(request)))

    handler.__name__ = f"item_{spec.name.replace('-', '_')}"
    handler.__doc__ = spec.summary
    return operation(
        f"{spec.summary} (event '{spec.event.value}'); 409 names the state and the allowed actions",
        tag="lifecycle",
        body=spec.body,
        body_required=False,
        response=Item,
        path=ItemPath,
    )(handler)


for _spec in ACTIONS:
    routes.post(f"/api/items/{{item_id}}/{_spec.name}")(_action_handler(_spec))


class UnitBody(rest.Request):
    """A unit."""

    unit_id: Annotated[int, Int(1, MAX_ID)]


class HandlerBody(rest.Request):
    """A handler, or (``recused``) a recusal with its reason (checked by the handler)."""

    recused: rest.Bool = None
    reason: Annotated[str, Text(2000, min_len=0)] = ""


class HandlerPath(ItemPath):
    """``{item_id}`` and ``{account_id}``."""

    account_id: DB_ID


class SessionBody(rest.Request):
    """A session to link."""

    session_id: SESSION_ID


class LinkedSession(rest.Wire):
    """The session linked to the item."""

    session_id: str
    item_id: ID32


@routes.post("/api/items/{item_id}/co-handlers")
@operation("Add a co-handling unit", tag="items", body=UnitBody, response=Item, path=ItemPath)
async def add_co_handler(request: web.Request) -> web.Response:
    """Add a co-handling unit (协办)."""
    p, item = await load_item(request, Action.EDIT_ITEM, holder_only=True)
    unit_id = parse_body(UnitBody, await read_json(request)).unit_id
    existing_unit(request, unit_id)
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
    return reply(Item.of(updated, calendar_of(request)))


@routes.put("/api/items/{item_id}/handlers/{account_id}")
@operation(
    "Make an account a handler, or record its recusal (Art. 28)",
    tag="items",
    body=HandlerBody,
    response=Item,
    path=HandlerPath,
)
async def set_handler(request: web.Request) -> web.Response:
    """Make an account a handler of the item, or record its recusal (Art. 28)."""
    p, item = await load_item(request, Action.EDIT_ITEM)
    try:
        account_id = int(request.match_info["account_id"])
    except ValueError as exc:
        raise NotFound(f"account {request.match_info['account_id'][:20]!r} not found") from exc
    data = await read_json(request)
    recused = bool(boolean(data, "recused"))
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
    return reply(Item.of(updated, calendar_of(request)))


@routes.get("/api/items/{item_id}/sessions")
@operation("Sessions linked to the item", tag="items", response=wire.Sessions, path=ItemPath)
async def item_sessions(request: web.Request) -> web.Response:
    """The sessions (visits, mediations, consultations) linked to the item."""
    p, item = await load_item(request, Action.VIEW_ITEM)
    async with request.app[keys.STORE].transaction() as tx:
        ids = await items.item_session_ids(tx, item.id)
        found = [await sessions.get_session(tx, sid) for sid in ids]
        await accounts.audit(
            tx, p.ref, "view_item_sessions", "item", item.id, remote=remote_of(request)
        )
    return reply(wire.Sessions(sessions=[wire.Session.of(s) for s in found]))


@routes.post("/api/items/{item_id}/sessions")
@operation(
    "Link a session to the item",
    tag="items",
    body=SessionBody,
    response=LinkedSession,
    path=ItemPath,
)
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
    return reply(LinkedSession(session_id=s.id, item_id=item.id))
