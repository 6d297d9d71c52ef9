"""Listings for officials: items in scope, sessions linked to an item."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import or_, select
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
    load_row,
    to_item,
)
from records.items.values import (
    Item,
)
from records.lifecycle import (
    ItemState,
)
from records.models import Session as SessionRow


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
        limit: at most this many (newest first), 1..500.
        offset: skip this many.
    """
    if not 1 <= limit <= 500 or offset < 0:
        raise ValidationError(f"limit 1..500 and offset >= 0 expected, got {limit}, {offset}")
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
    q = q.order_by(t.registered_at.desc(), t.id).limit(limit).offset(offset)
    rows = (await session.scalars(q)).all()
    return [await to_item(session, r) for r in rows]


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
