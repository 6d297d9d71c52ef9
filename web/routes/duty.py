"""The duty roster (值班领导) of the units a ``to_leader`` visit may reach."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field

from config.errors import ValidationError
from records import accounts, policy, sessions
from records.base import utcnow
from records.deadlines import local_date
from records.enums import (
    Role,
)
from records.policy import Action, UnitTarget, in_scope
from web import keys
from web.auth import (
    authorize,
    remote_of,
    require_official,
)
from web.input import query_int, read_json
from web.rest import Date, Int, Request, Wire, operation, parse_body, reply

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


class DutyQuery(BaseModel):
    """``?from=&days=``."""

    from_: Annotated[dt.date | None, Field(alias="from")] = None
    days: Annotated[int, Field(ge=1, le=31)] | None = None


class DutyLeader(Wire):
    """A leader of the unit."""

    id: int
    name: str


class OnDuty(Wire):
    """The leader on duty of a day."""

    account_id: int
    name: str


class DutyUnit(Wire):
    """One unit's row of the roster."""

    unit_id: int
    unit_name: str
    reception: bool
    can_edit: bool
    leaders: list[DutyLeader]
    days: dict[str, OnDuty | None]


class DutyRoster(Wire):
    """``GET /api/duty``."""

    days: list[Date]
    units: list[DutyUnit]


class DutyPath(BaseModel):
    """``{day}``."""

    day: dt.date


class DutyBody(Request):
    """``PUT /api/duty/{day}``."""

    unit_id: Annotated[int, Int(1, 2**31)]
    account_id: Annotated[int, Int(1, 2**31)]


class DutySet(Wire):
    """The day set."""

    day: Date
    unit_id: int
    account_id: int


@routes.get("/api/duty")
@operation(
    "The duty roster of a week per unit a to_leader visit may reach",
    tag="admin",
    response=DutyRoster,
    query=DutyQuery,
)
async def duty_week(request: web.Request) -> web.Response:
    """The duty roster of ``days`` days (default 7) from ``from`` (default today, in China).

    One row per unit a ``to_leader`` visit may reach: every reception unit the caller sees
    (``/api/orgs``) and the units above it, as the visit looks for the leader on duty there
    first, then upwards. Each row carries the unit's own leaders (the only ones the roster may
    name), who is on duty per day and whether the caller may edit it (``MANAGE_DUTY``).
    Reception officers read it; leaders and administrators of the unit edit it.
    """
    p = require_official(request)
    raw = request.query.get("from")
    try:
        start = dt.date.fromisoformat(raw) if raw else local_date(utcnow())
    except ValueError as exc:
        raise ValidationError(f"query parameter 'from'={raw!r:.20}: YYYY-MM-DD expected") from exc
    count = query_int(request, "days", lo=1, hi=31, default=7)
    days = [start + dt.timedelta(days=n) for n in range(count)]
    tree = request.app[keys.STORE].tree
    assert p.unit_id is not None
    visible = [
        u
        for u in tree.units.values()
        if u.is_reception and (in_scope(p, u.id, tree) or u.id in tree.ancestors(p.unit_id))
    ]
    unit_ids: list[int] = []
    for u in sorted(visible, key=lambda u: u.id):
        for uid in (u.id, *tree.ancestors(u.id)):
            if uid not in unit_ids:
                unit_ids.append(uid)
    async with request.app[keys.STORE].transaction() as tx:
        roster = await sessions.duty_between(tx, days[0], days[-1] + dt.timedelta(days=1), unit_ids)
        leaders = await accounts.list_leaders(tx, unit_ids)
    names = {a.id: a.display_name for a in leaders}
    rows: list[DutyUnit] = []
    for uid in unit_ids:
        own = [a for a in leaders if a.unit_id == uid]
        if not own and not tree.units[uid].is_reception:
            continue  # nobody there could be on duty
        on_duty = {d.isoformat(): roster.get((d, uid)) for d in days}
        rows.append(
            DutyUnit(
                unit_id=uid,
                unit_name=tree.units[uid].name,
                reception=tree.units[uid].is_reception,
                can_edit=bool(policy.decide(p, Action.MANAGE_DUTY, UnitTarget(uid), tree)),
                leaders=[DutyLeader(id=a.id, name=a.display_name) for a in own],
                days={
                    day: None if aid is None else OnDuty(account_id=aid, name=names.get(aid, ""))
                    for day, aid in on_duty.items()
                },
            )
        )
    return reply(DutyRoster(days=days, units=rows))


@routes.put("/api/duty/{day}")
@operation(
    "Set the leader on duty of a unit for a day (a leader of that very unit)",
    tag="admin",
    body=DutyBody,
    response=DutySet,
    path=DutyPath,
)
async def set_duty(request: web.Request) -> web.Response:
    """Set the leader on duty (值班领导) of a unit for a day."""
    try:
        day = dt.date.fromisoformat(request.match_info["day"])
    except ValueError as exc:
        raise ValidationError(f"day {request.match_info['day']!r}: YYYY-MM-DD expected") from exc
    body = parse_body(DutyBody, await read_json(request))
    unit_id, account_id = body.unit_id, body.account_id
    p = await authorize(request, Action.MANAGE_DUTY, UnitTarget(unit_id))
    async with request.app[keys.STORE].transaction() as tx:
        leader = await accounts.get_account(tx, account_id)
        if Role.LEADER not in leader.roles:
            raise ValidationError(f"account {account_id} is not a leader")
        if leader.unit_id != unit_id:
            # the roster names the unit's own leaders (DOMAIN.md): a visit routed to the
            # leader on duty is taken by that leader alone, so it must belong to the unit
            raise ValidationError(
                f"account {account_id} ({leader.username!r}) is a leader of unit "
                f"{leader.unit_id}, not of unit {unit_id}: the duty roster names the unit's "
                "own leaders"
            )
        await sessions.set_duty(tx, day, unit_id, account_id)
        await accounts.audit(
            tx,
            p.ref,
            "duty_set",
            "unit",
            str(unit_id),
            remote=remote_of(request),
            detail={"day": day.isoformat(), "account": account_id},
        )
    return reply(DutySet(day=day, unit_id=unit_id, account_id=account_id))
