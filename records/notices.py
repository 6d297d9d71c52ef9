"""Official holiday notices imported into the database, and what importing one changes.

The State Council publishes a year's schedule around November of the year before. An
administrator imports it (``petition-gateway calendar import CN-2027.toml``, the format of
``config/holidays/``); it is kept in ``calendar_notices``, not in the holidays directory,
because every hub of a cluster reads the same database while each has its own disk (a file
copied to one hub would leave the others on the rules). Rows are never updated: a corrected
notice is imported again and the newest import of a year wins, so the table is also the
record of what was imported when and by whom (the audit log has the entry too).

A hub reads the notices when it starts (``gateway/app.py``); after an import, restart the
hubs one by one. The import itself recomputes the open items' deadlines
(:func:`recompute_open_deadlines`) and notes each moved date in the item's history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Index, Integer, String, Text, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from config.errors import RecordsError
from records.base import Base, created_at, intpk
from records.calendar import HolidayCalendar, Notice, calendar_from_notices, parse_notice
from records.item_models import ItemEvent, ItemRow
from records.lifecycle import (
    TERMINAL_STATES,
    EventType,
    HistoryEvent,
    RuleSet,
    current_deadline,
    replay,
)

__all__ = [
    "CalendarNoticeRow",
    "DeadlineChange",
    "ImportedNotice",
    "import_notice",
    "imported_notices",
    "recompute_open_deadlines",
]


class CalendarNoticeRow(Base):
    """One import of a year's official holiday notice (never updated)."""

    __tablename__ = "calendar_notices"
    __table_args__ = (Index("ix_calendar_notices_year", "year", "id"),)

    id: Mapped[intpk]
    year: Mapped[int] = mapped_column(Integer)
    #: the file name as imported, e.g. ``CN-2027.toml``
    file_name: Mapped[str] = mapped_column(String(200))
    #: the notice it transcribes (the file's ``source`` key), for people
    source: Mapped[str] = mapped_column(String(300), default="")
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    imported_by: Mapped[str] = mapped_column(String(80))
    imported_at: Mapped[created_at]


@dataclass(frozen=True, slots=True)
class ImportedNotice:
    """An imported notice, as the layers above see it."""

    id: int
    year: int
    file_name: str
    source: str
    sha256: str
    imported_by: str
    imported_at: dt.datetime


@dataclass(frozen=True, slots=True)
class DeadlineChange:
    """An open item whose current deadline moved with a new calendar."""

    item_id: str
    what: str
    before: dt.date | None
    after: dt.date | None


def _info(row: CalendarNoticeRow) -> ImportedNotice:
    return ImportedNotice(
        id=row.id,
        year=row.year,
        file_name=row.file_name,
        source=row.source,
        sha256=row.sha256,
        imported_by=row.imported_by,
        imported_at=row.imported_at,
    )


async def imported_notices(session: AsyncSession) -> list[Notice]:
    """The newest import of each year, oldest year first, for :func:`load_calendar`."""
    try:
        rows = (
            await session.scalars(select(CalendarNoticeRow).order_by(CalendarNoticeRow.id))
        ).all()
    except SQLAlchemyError as exc:
        raise RecordsError(f"cannot read the imported holiday notices: {exc}") from exc
    newest = {row.year: row for row in rows}
    return [
        Notice(year=year, origin=f"imported {row.file_name} (#{row.id})", text=row.text)
        for year, row in sorted(newest.items())
    ]


async def import_notice(
    session: AsyncSession,
    year: int,
    file_name: str,
    text: str,
    *,
    imported_by: str,
    shipped: Sequence[Notice] = (),
) -> ImportedNotice:
    """Check a notice and store it (the caller audits and commits).

    Args:
        session: database session.
        year: the year it schedules (from its file name).
        file_name: the file's name, for messages and the record.
        text: the TOML text.
        imported_by: who imports it (account or operator name).
        shipped: the notices already known (files, earlier imports); the new one must agree
            with them where they meet (a New Year block reaching into the year before).

    Raises:
        ConfigError: malformed (the message names the file and the key) or contradicting.
    """
    notice = Notice(year=year, origin=f"imported {file_name}", text=text)
    parse_notice(notice)
    calendar_from_notices([*shipped, notice])  # the same checks as at start-up
    source = str(tomllib.loads(text).get("source", ""))[:300]
    row = CalendarNoticeRow(
        year=year,
        file_name=file_name[:200],
        source=source,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        imported_by=imported_by[:80],
    )
    session.add(row)
    try:
        await session.flush()
    except SQLAlchemyError as exc:
        raise RecordsError(f"cannot store the holiday notice {file_name}: {exc}") from exc
    return _info(row)


async def recompute_open_deadlines(
    session: AsyncSession,
    calendar: HolidayCalendar,
    *,
    year: int,
    account_id: int | None = None,
    at: dt.datetime | None = None,
) -> list[DeadlineChange]:
    """Recompute the current deadline of every open item a notice for ``year`` can move.

    Items not in a terminal state whose stored due date is from December of the year
    before on (a New Year block may start on 31 December) are replayed with ``calendar``;
    where the due date changes, the derived columns are rewritten and a ``note`` event is
    appended to the item's history saying from what to what and why. The on-time flags of
    events already past are left as they were decided. The caller commits.

    ``petition-gateway calendar import`` calls it after storing a notice; the items package
    (``records/items/``) does not call it by itself yet.
    """
    when = at or dt.datetime.now(dt.UTC)
    terminal = [s.value for s in TERMINAL_STATES]
    rows = (
        await session.scalars(
            select(ItemRow)
            .where(
                ItemRow.state.not_in(terminal),
                ItemRow.due_on >= dt.date(year - 1, 12, 1),
                ItemRow.due_obligor.is_not(None),
            )
            .order_by(ItemRow.id)
        )
    ).all()
    changes: list[DeadlineChange] = []
    for row in rows:
        events = (
            await session.scalars(
                select(ItemEvent).where(ItemEvent.item_id == row.id).order_by(ItemEvent.seq)
            )
        ).all()
        history = [
            HistoryEvent(at=e.at, type=EventType(e.type), data=e.data, account_id=e.account_id)
            for e in events
        ]
        timeline = replay(history, calendar, RuleSet(row.rule_set))
        deadline = current_deadline(timeline, calendar)
        after = deadline.due if deadline else None
        if after == row.due_on:
            continue
        before = row.due_on
        what = deadline.what if deadline else (row.due_what or "")
        session.add(
            ItemEvent(
                item_id=row.id,
                seq=(events[-1].seq if events else 0) + 1,
                at=when,
                account_id=account_id,
                type=EventType.NOTE.value,
                from_state=row.state,
                to_state=row.state,
                reason=f"holiday notice for {year} imported: deadline recomputed",
                data={
                    "deadline": what,
                    "due_before": before.isoformat() if before else None,
                    "due_after": after.isoformat() if after else None,
                    "calendar_year": year,
                },
            )
        )
        row.due_on = after
        if deadline is not None:
            row.due_what, row.due_article = deadline.what, deadline.article
        changes.append(DeadlineChange(item_id=row.id, what=what, before=before, after=after))
    try:
        await session.flush()
    except SQLAlchemyError as exc:
        raise RecordsError(f"cannot store the recomputed deadlines: {exc}") from exc
    return changes
