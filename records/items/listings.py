"""Listings for officials: items in scope, sessions linked to an item."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import ValidationError
from records.item_models import (
    Channel,
    ItemCoHandler,
    ItemHandler,
    ItemRow,
    ItemType,
)
from records.items.core import (
    load_related,
    load_row,
    to_item,
)
from records.items.values import (
    Item,
)
from records.lifecycle import (
    ItemState,
)
from records.models import Account, AccountRole
from records.models import Session as SessionRow

#: how a list may be ordered: the name the API takes → the column
SORTS = ("received", "due", "state")
#: the most rows one call may ask for (the CSV export's limit; the JSON list asks for ≤ 500)
MAX_ROWS = 5000


async def list_items(
    session: AsyncSession,
    *,
    unit_ids: Sequence[int] | None,
    viewer_account_id: int,
    states: Sequence[ItemState] | None = None,
    types: Sequence[ItemType] | None = None,
    channels: Sequence[Channel] | None = None,
    registered_from: dt.datetime | None = None,
    registered_before: dt.datetime | None = None,
    urgent: bool | None = None,
    categories: Sequence[str] | None = None,
    handler_account_id: int | None = None,
    due_before: dt.date | None = None,
    sort: str = "received",
    descending: bool = True,
    limit: int = 100,
    offset: int = 0,
) -> list[Item]:
    """Items visible to an official: in scope, confidential only to handlers, not recused.

    Args:
        session: database session.
        unit_ids: the viewer's scope; an item is in it when its registering, handling or a
            co-handling unit is (``None``: every unit, the district petition bureau).
        viewer_account_id: the official; confidential items (Art. 30) are listed only when
            they handle them, and items they are recused from (Art. 28) never.
        states: only these states.
        types: only these types.
        channels: only these channels.
        registered_from: registered at or after.
        registered_before: registered before.
        urgent: only urgent (True) or non-urgent (False) items.
        categories: only these matter categories.
        handler_account_id: only items this account handles (named handler, not recused).
        due_before: only items with a current deadline before this day (the overdue ones:
            before today).
        sort: ``received`` (registration time), ``due`` (current deadline; items without
            one last) or ``state`` (in lifecycle order); ties newest first.
        descending: reverse the order of ``sort``.
        limit: at most this many, 1..:data:`MAX_ROWS`.
        offset: skip this many.
    """
    if not 1 <= limit <= MAX_ROWS or offset < 0:
        raise ValidationError(
            f"limit 1..{MAX_ROWS} and offset >= 0 expected, got {limit}, {offset}"
        )
    if sort not in SORTS:
        raise ValidationError(f"sort {sort!r:.20} not in {SORTS}")
    t = ItemRow
    q = select(t)
    if unit_ids is not None:
        ids = list(unit_ids)
        co = select(ItemCoHandler.item_id).where(ItemCoHandler.unit_id.in_(ids))
        q = q.where(or_(t.registering_unit_id.in_(ids), t.handling_unit_id.in_(ids), t.id.in_(co)))
    handles = select(ItemHandler.item_id).where(
        ItemHandler.account_id == viewer_account_id, ItemHandler.recused.is_(False)
    )
    recused = select(ItemHandler.item_id).where(
        ItemHandler.account_id == viewer_account_id, ItemHandler.recused.is_(True)
    )
    q = q.where(or_(t.confidential.is_(False), t.id.in_(handles)), t.id.not_in(recused))
    if states:
        q = q.where(t.state.in_([s.value for s in states]))
    if types:
        q = q.where(t.type.in_([x.value for x in types]))
    if channels:
        q = q.where(t.channel.in_([c.value for c in channels]))
    if registered_from is not None:
        q = q.where(t.registered_at >= registered_from)
    if registered_before is not None:
        q = q.where(t.registered_at < registered_before)
    if urgent is not None:
        q = q.where(t.urgent.is_(urgent))
    if categories:
        q = q.where(t.category.in_(list(categories)))
    if handler_account_id is not None:
        named = select(ItemHandler.item_id).where(
            ItemHandler.account_id == handler_account_id, ItemHandler.recused.is_(False)
        )
        q = q.where(t.id.in_(named))
    if due_before is not None:
        q = q.where(t.due_on.is_not(None), t.due_on < due_before)
    key: ColumnElement[Any] = t.registered_at.expression
    if sort == "due":
        key = t.due_on.expression
    elif sort == "state":  # in the order of the lifecycle, not of the state names
        key = case({st.value: n for n, st in enumerate(ItemState)}, value=t.state, else_=99)
    order: list[ColumnElement[Any]] = [key.desc() if descending else key.asc()]
    if sort == "due":  # items without a deadline last, whichever the direction
        order.insert(0, t.due_on.is_(None))
    q = q.order_by(*order, t.registered_at.desc(), t.id).limit(limit).offset(offset)
    rows = (await session.scalars(q)).all()
    related = await load_related(session, [r.id for r in rows])
    return [await to_item(session, r, related[r.id]) for r in rows]


async def item_session_ids(session: AsyncSession, item_id: str) -> list[str]:
    """Ids of the sessions linked to an item (its registering session first), oldest first."""
    row = await load_row(session, item_id)
    ids = list(
        (
            await session.scalars(
                select(SessionRow.id)
                .where(SessionRow.item_id == item_id)
                .order_by(SessionRow.created_at)
            )
        ).all()
    )
    if row.session_id and row.session_id not in ids:
        ids.insert(0, row.session_id)
    return ids


async def list_officials(
    session: AsyncSession, unit_ids: Sequence[int] | None
) -> list[tuple[int, str, int]]:
    """Active officials (accounts with a role) of ``unit_ids`` as ``(id, name, unit_id)``.

    Who may be named as a handler, or filtered on as one; by unit, then name. ``None``: every
    unit.
    """
    q = (
        select(Account.id, Account.display_name, Account.unit_id)
        .where(Account.active.is_(True), Account.id.in_(select(AccountRole.account_id)))
        .order_by(Account.unit_id, Account.display_name, Account.id)
    )
    if unit_ids is not None:
        q = q.where(Account.unit_id.in_(list(unit_ids)))
    return [(r.id, r.display_name, r.unit_id) for r in (await session.execute(q)).all()]
