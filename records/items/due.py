"""Due-soon and overdue lists of unit deadlines."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import ValidationError
from records.item_models import (
    ItemRow,
)
from records.items.values import (
    DueItem,
)
from records.lifecycle import (
    ItemState,
)


def _due_item(row: ItemRow, today: dt.date) -> DueItem:
    assert row.due_on is not None
    return DueItem(
        item_id=row.id,
        lookup_code=row.lookup_code,
        state=ItemState(row.state),
        due_unit_id=row.due_unit_id,
        handling_unit_id=row.handling_unit_id,
        due_on=row.due_on,
        due_what=row.due_what or "",
        due_article=row.due_article or "",
        days_left=(row.due_on - today).days,
        confidential=row.confidential,
    )


async def list_due(
    session: AsyncSession,
    unit_ids: Sequence[int],
    within_days: int,
    today: dt.date,
) -> list[DueItem]:
    """Items whose unit deadline falls within ``today .. today + within_days``, soonest first."""
    if within_days < 0:
        raise ValidationError(f"within_days must be >= 0, got {within_days}")
    rows = (
        await session.scalars(
            select(ItemRow)
            .where(
                ItemRow.due_unit_id.in_(list(unit_ids)),
                ItemRow.due_obligor == "unit",
                ItemRow.due_on >= today,
                ItemRow.due_on <= today + dt.timedelta(days=within_days),
            )
            .order_by(ItemRow.due_on, ItemRow.id)
        )
    ).all()
    return [_due_item(r, today) for r in rows]


async def list_overdue(
    session: AsyncSession, unit_ids: Sequence[int], today: dt.date
) -> list[DueItem]:
    """Items whose unit deadline has passed (``due_on < today``), most overdue first."""
    rows = (
        await session.scalars(
            select(ItemRow)
            .where(
                ItemRow.due_unit_id.in_(list(unit_ids)),
                ItemRow.due_obligor == "unit",
                ItemRow.due_on < today,
            )
            .order_by(ItemRow.due_on, ItemRow.id)
        )
    ).all()
    return [_due_item(r, today) for r in rows]
