"""Announcements to the terminals of a unit subtree."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel

from config.errors import NotFound
from records import accounts, policy, receipts, sessions
from records.base import utcnow
from records.policy import Action, UnitTarget
from records.principals import Principal
from web import keys
from web.auth import (
    authorize,
    remote_of,
    require_official,
)
from web.input import read_json
from web.rest import DB_ID, DateTime, Int, Request, Text, Wire, operation, parse_body, reply

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


class AnnouncementBody(Request):
    """``POST /api/announcements``: to the caller's unit unless ``unit_id``; 72 h by default."""

    unit_id: Annotated[int, Int(1, 2**31)] | None = None
    title: Annotated[str, Text(200)]
    body: Annotated[str, Text(5000)]
    expires_in_h: Annotated[int, Int(1, 24 * 365)] | None = None


class Announcement(Wire):
    """An announcement as the terminals get it."""

    id: int
    unit_id: int
    title: str
    body: str
    published_at: DateTime
    expires_at: DateTime

    @classmethod
    def fields_of(cls, a: sessions.AnnouncementInfo) -> dict[str, Any]:
        """The fields of ``a``."""
        return {
            "id": a.id,
            "unit_id": a.unit_id,
            "title": a.title,
            "body": a.body,
            "published_at": a.published_at,
            "expires_at": a.expires_at,
        }

    @classmethod
    def of(cls, a: sessions.AnnouncementInfo) -> Announcement:
        """The wire form of ``a``."""
        return cls(**cls.fields_of(a))


class AnnouncementListed(Announcement):
    """An announcement in the officials' list."""

    unit_name: str
    author_id: int
    author_name: str
    withdrawn_at: DateTime | None
    can_withdraw: bool


class Shown(Wire):
    """A terminal that showed the announcement, and when."""

    terminal_id: int
    name: str
    unit_name: str
    at: DateTime


class Delivery(Wire):
    """Which terminals of the announcement's subtree showed it."""

    terminals: int
    shown: list[Shown]


class AnnouncementDelivered(AnnouncementListed):
    """An announcement in the officials' list, with its delivery (not in the withdrawal's)."""

    delivery: Delivery


class Announcements(Wire):
    """``GET /api/announcements``."""

    announcements: list[AnnouncementDelivered]


class AnnouncementPath(BaseModel):
    """``{announcement_id}``."""

    announcement_id: DB_ID


@routes.post("/api/announcements")
@operation(
    "Publish an announcement to the terminals of a unit subtree",
    tag="admin",
    body=AnnouncementBody,
    response=Announcement,
    status=201,
)
async def publish_announcement(request: web.Request) -> web.Response:
    """Publish an announcement to the terminals of the caller's unit subtree."""
    p = require_official(request)
    body = parse_body(AnnouncementBody, await read_json(request))
    unit_id = body.unit_id if body.unit_id is not None else p.unit_id
    assert unit_id is not None
    await authorize(request, Action.PUBLISH_ANNOUNCEMENT, UnitTarget(unit_id))
    hours = body.expires_in_h if body.expires_in_h is not None else 72
    assert p.account_id is not None
    async with request.app[keys.STORE].transaction() as tx:
        ann = await sessions.create_announcement(
            tx,
            unit_id,
            body.title,
            body.body,
            p.account_id,
            utcnow() + dt.timedelta(hours=hours),
        )
        await accounts.audit(
            tx,
            p.ref,
            "announcement_publish",
            "announcement",
            str(ann.id),
            remote=remote_of(request),
        )
    hub = request.app.get(keys.HUB)
    if hub is not None:
        await hub.announce(ann)
    return reply(Announcement.of(ann), status=201)


def _listed(
    request: web.Request, p: Principal, rec: sessions.AnnouncementRecord
) -> AnnouncementListed:
    tree = request.app[keys.STORE].tree
    unit = tree.get(rec.info.unit_id)
    return AnnouncementListed(
        **Announcement.fields_of(rec.info),
        unit_name=unit.name if unit else "",
        author_id=rec.author_id,
        author_name=rec.author_name,
        withdrawn_at=rec.withdrawn_at,
        can_withdraw=rec.withdrawn_at is None
        and bool(policy.decide(p, Action.PUBLISH_ANNOUNCEMENT, UnitTarget(rec.info.unit_id), tree)),
    )


@routes.get("/api/announcements")
@operation(
    "Announcements published to units of the caller's scope, newest first",
    tag="admin",
    response=Announcements,
)
async def list_announcements(request: web.Request) -> web.Response:
    """Announcements published to units of the caller's scope, newest first (at most 100)."""
    p = require_official(request)
    tree = request.app[keys.STORE].tree
    assert p.unit_id is not None
    units = None if tree.sees_everything(p.unit_id) else sorted(tree.subtree(p.unit_id))
    async with request.app[keys.STORE].transaction() as tx:
        found = await sessions.list_announcements(tx, units)
        shown = await receipts.receipts(tx, [a.info.id for a in found])
        reach = {u for a in found for u in tree.subtree(a.info.unit_id)}
        terminals = await receipts.active_terminals(tx, reach)
    listed = []
    for a in found:
        subtree = tree.subtree(a.info.unit_id)
        delivery = Delivery(
            terminals=sum(1 for t in terminals if t.unit_id in subtree),
            shown=[
                Shown(
                    terminal_id=r.terminal.id,
                    name=r.terminal.name,
                    unit_name=tree.units[r.terminal.unit_id].name,
                    at=r.shown_at,
                )
                for r in shown
                if r.announcement_id == a.info.id
            ],
        )
        base = _listed(request, p, a)
        listed.append(AnnouncementDelivered(**dict(base), delivery=delivery))
    return reply(Announcements(announcements=listed))


@routes.post("/api/announcements/{announcement_id}/withdraw")
@operation(
    "Withdraw an announcement (terminals drop it at once)",
    tag="admin",
    response=AnnouncementListed,
    path=AnnouncementPath,
)
async def withdraw_announcement(request: web.Request) -> web.Response:
    """Withdraw an announcement: the terminals showing it drop it at once."""
    try:
        announcement_id = int(request.match_info["announcement_id"])
    except ValueError as exc:
        raise NotFound(
            f"announcement {request.match_info['announcement_id'][:20]!r} not found"
        ) from exc
    async with request.app[keys.STORE].transaction() as tx:
        ann = await sessions.get_announcement(tx, announcement_id)
    p = await authorize(request, Action.PUBLISH_ANNOUNCEMENT, UnitTarget(ann.unit_id))
    async with request.app[keys.STORE].transaction() as tx:
        rec = await sessions.withdraw_announcement(tx, announcement_id)
        await accounts.audit(
            tx,
            p.ref,
            "announcement_withdraw",
            "announcement",
            str(announcement_id),
            remote=remote_of(request),
        )
    hub = request.app.get(keys.HUB)
    if hub is not None and rec.withdrawn_at is not None:
        # terminals drop an announcement once it has expired: pushed again as expiring at the
        # moment of withdrawal, it leaves every kiosk showing it (the stored expiry stays)
        await hub.announce(dataclasses.replace(rec.info, expires_at=rec.withdrawn_at))
    return reply(_listed(request, p, rec))
