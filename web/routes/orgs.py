"""The organisation tree and the leaders the caller may name."""

from __future__ import annotations

import logging

from aiohttp import web

from config.errors import AccessDenied
from records import accounts
from records.enums import (
    PrincipalKind,
)
from records.policy import in_scope
from web import keys, wire
from web.auth import (
    principal_of,
    require_official,
)
from web.input import query_int
from web.rest import operation, reply

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/api/orgs")
@operation("Units in the caller's scope", tag="orgs", response=wire.OrgUnits)
async def org_units(request: web.Request) -> web.Response:
    """The units in the caller's scope (all units for the petition bureau).

    Not for invite holders: the org tree is nothing an invitee sees on ``/ws``.
    """
    p = principal_of(request)
    if p.kind is PrincipalKind.INVITE:
        raise AccessDenied("invite holders cannot read the org tree")
    tree = request.app[keys.STORE].tree
    units = [
        wire.OrgUnit(
            id=u.id,
            code=u.code,
            name=u.name,
            level=u.level.value,
            parent_id=u.parent_id,
            active=u.active,
            # false for the units above the caller's, listed only to place it in the tree
            in_scope=in_scope(p, u.id, tree),
        )
        for u in tree.units.values()
        if in_scope(p, u.id, tree) or (p.unit_id is not None and u.id in tree.ancestors(p.unit_id))
    ]
    return reply(wire.OrgUnits(units=units))


@routes.get("/api/leaders")
@operation(
    "The leaders of the units the caller sees (approvers, the duty roster)",
    tag="admin",
    response=wire.Leaders,
    query=wire.UnitQuery,
)
async def leaders(request: web.Request) -> web.Response:
    """The leaders who may lead the caller's work (``?unit_id=`` for one unit's).

    The leaders of the units in ``/api/orgs`` (the caller's scope and the units above it) and
    of the petition bureau, whose leaders lead every unit: the item page offers them as
    approvers of an extension (Art. 34), the duty roster as a unit's leaders on duty. Names
    and units only.
    """
    p = require_official(request)
    tree = request.app[keys.STORE].tree
    unit_id = query_int(request, "unit_id", lo=1, hi=2**31 - 1, default=0) or None
    assert p.unit_id is not None
    seen = {
        u.id
        for u in tree.units.values()
        if in_scope(p, u.id, tree)
        or u.id in tree.ancestors(p.unit_id)
        or tree.sees_everything(u.id)
    }
    wanted = seen if unit_id is None else seen & {unit_id}
    async with request.app[keys.STORE].transaction() as tx:
        found = await accounts.list_leaders(tx, wanted)
    return reply(
        wire.Leaders(
            leaders=[
                wire.Leader(
                    id=a.id,
                    name=a.display_name,
                    unit_id=a.unit_id,
                    unit_name=tree.units[a.unit_id].name,
                )
                for a in found
            ]
        )
    )
