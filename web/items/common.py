"""What every item route shares: input limits, small parsers, scope, loading an item."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from config.errors import AccessDenied, NotFound, ValidationError
from records import accounts, items
from records.base import utcnow
from records.calendar import HolidayCalendar
from records.deadlines import local_date
from records.keyring import DataKeyring
from records.policy import Action, ItemTarget, decide, in_scope
from records.principals import Principal
from web import keys
from web.auth import authorize, remote_of, require_official
from web.input import text

#: the two stages a petitioner rates (by themselves, or recorded by staff)
Stage = Literal["acceptance", "handling"]
#: which unit the statistics count an item for
CountBy = Literal["registering", "handling"]

MAX_TEXT = 20_000
MAX_ID = 2**31 - 1
ITEM_ID = re.compile(r"^[0-9a-f]{32}$")


def iso(value: dt.datetime | dt.date | None) -> str | None:
    """The ISO form of a date or time, ``None`` as it is."""
    return None if value is None else value.isoformat()


def calendar_of(request: web.Request) -> HolidayCalendar:
    """The holiday calendar of the application."""
    return request.app[keys.CALENDAR]


def keyring_of(request: web.Request) -> DataKeyring:
    """The keyring sealing identity numbers."""
    return request.app[keys.KEYRING]


def local_today() -> dt.date:
    """Today in China Standard Time."""
    return local_date(utcnow())


def boolean(data: dict[str, Any], key: str, *, default: bool | None = False) -> bool | None:
    """An optional boolean body field (``default`` when absent or null)."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValidationError(f"field {key!r} must be true or false, got {value!r:.40}")
    return value


def opt_text(data: dict[str, Any], key: str, *, max_len: int = 200) -> str | None:
    """An optional text body field, ``None`` when empty."""
    value = text(data, key, max_len=max_len, required=False, default="")
    return value or None


def parse_date(raw: object, what: str) -> dt.date:
    """A ``YYYY-MM-DD`` date; ``what`` names the field in the error."""
    if not isinstance(raw, str):
        raise ValidationError(f"{what} must be a date YYYY-MM-DD, got {raw!r:.40}")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationError(f"{what} {raw!r:.40}: YYYY-MM-DD expected") from exc


def query_date(request: web.Request, key: str) -> dt.date | None:
    """An optional ``YYYY-MM-DD`` query parameter."""
    raw = request.query.get(key)
    return None if raw is None else parse_date(raw, f"query parameter {key!r}")


def query_enum(request: web.Request, key: str, options: Any) -> list[str] | None:
    """An optional comma-separated query parameter of enum values."""
    raw = request.query.get(key)
    if raw is None or raw == "":
        return None
    allowed = {o.value for o in options}
    values = [v for v in raw.split(",") if v]
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValidationError(f"query parameter {key!r}: {bad!r:.60} not in {sorted(allowed)}")
    return values


def existing_unit(request: web.Request, value: int) -> int:
    """``value``, which must be the id of a unit of the organisation tree."""
    if request.app[keys.STORE].tree.get(value) is None:
        raise ValidationError(f"unit {value} does not exist")
    return value


def unit_name(request: web.Request, unit_id: int | None) -> str:
    """The unit's name, empty when there is none."""
    unit = request.app[keys.STORE].tree.get(unit_id) if unit_id is not None else None
    return unit.name if unit is not None else ""


def scope_units(request: web.Request, p: Principal, unit_id: int | None) -> list[int] | None:
    """The unit ids a listing covers: ``None`` for every unit (petition bureau, no filter)."""
    tree = request.app[keys.STORE].tree
    assert p.unit_id is not None
    if unit_id is None:
        return None if tree.sees_everything(p.unit_id) else sorted(tree.subtree(p.unit_id))
    return sorted(tree.subtree(unit_id))


async def require_unit_scope(request: web.Request, unit_id: int, what: str) -> Principal:
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


def item_target(item: items.Item, *, holder_only: bool = False) -> ItemTarget:
    """What the policy needs of an item (see :meth:`records.items.Item.target`)."""
    return item.target(holder_only=holder_only)


def item_id_of(request: web.Request) -> str:
    """The item id in the path (32 hex digits, else not found)."""
    item_id = request.match_info["item_id"]
    if not ITEM_ID.match(item_id):
        raise NotFound(f"no petition item {item_id[:40]!r}")
    return item_id


async def load_item(
    request: web.Request, action: Action, *, holder_only: bool = False
) -> tuple[Principal, items.Item]:
    """Read the item named in the path and check ``action`` on it (refusals audited)."""
    item_id = item_id_of(request)
    async with request.app[keys.STORE].transaction() as tx:
        item = await items.get_item(tx, item_id)
    p = await authorize(request, action, item_target(item, holder_only=holder_only))
    return p, item


async def visible_items(request: web.Request, p: Principal, item_ids: Sequence[str]) -> set[str]:
    """Which of ``item_ids`` the principal may read (confidentiality, recusal, scope)."""
    tree = request.app[keys.STORE].tree
    seen: set[str] = set()
    async with request.app[keys.STORE].transaction() as tx:
        for item_id in dict.fromkeys(item_ids):
            item = await items.get_item(tx, item_id)
            if decide(p, Action.VIEW_ITEM, item_target(item), tree):
                seen.add(item_id)
    return seen


def cn_date(day: dt.date) -> str:
    """A date as written in a notice: 2024年5月1日."""
    return f"{day.year}年{day.month}月{day.day}日"


#: a unit the listing covers
UNIT_PARAM = Annotated[
    int | None,
    Field(ge=1, le=MAX_ID, description="a unit in the caller's scope (default: the caller's)"),
]


class UnitQuery(BaseModel):
    """``?unit_id=``."""

    unit_id: UNIT_PARAM = None
