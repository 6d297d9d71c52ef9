"""The records behind one figure of a report: which items (or routings, supervisions) it counts.

:func:`figure_records` answers "which 636?" for ``concluded``, or any other figure of
:func:`records.statistics.annual_report`, with the same cohort (items registered in the
period by the units, or handled by them as of then) read **as of the same instant**: an
item's state is the one its history had at ``as_of`` (the ``from_state`` of its first event
from then on), its resolution the last outcome recorded before then. The list therefore has
exactly as many entries as the figure counts (tests/records/test_report_records.py checks
every figure of the 2021 report). Figure keys:

* ``received``, ``concluded``, ``in_progress``, ``closed_otherwise``;
* ``state:<state>``, ``channel:<channel>``, ``online_platform:<name>``, ``type:<type>``,
  ``category:<name>``, ``subject_unit:<unit id>``;
* ``from_above:<level>``, ``led_by_other_unit:<level>``, ``resolved:<level>``;
* ``transfers``, ``assignments`` (one entry per routing made by the units in the period);
* ``supervision`` (one entry per supervision recorded by the units in the period).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from config.errors import ValidationError
from records.deadlines import CHINA_TZ
from records.item_models import (
    Channel,
    ItemEvent,
    ItemRow,
    ItemSupervision,
    ItemTransfer,
    OriginLevel,
    TransferKind,
)
from records.lifecycle import EventType, ItemState
from records.report_scans import UNREPORTED_EVENTS, handling_unit_then
from records.statistics import AnnualReport

__all__ = ["FIGURE_KINDS", "FigureRecord", "FigureRecords", "figure_records", "report_figures"]

#: figures without a value after the colon
_PLAIN = ("received", "concluded", "in_progress", "closed_otherwise")
_ROUTINGS = {"transfers": TransferKind.TRANSFER, "assignments": TransferKind.ASSIGN}
#: figures with a value: ``kind:value``
FIGURE_KINDS = (
    "state",
    "channel",
    "online_platform",
    "type",
    "category",
    "subject_unit",
    "from_above",
    "led_by_other_unit",
    "resolved",
)
_CLOSED_OTHER = {
    ItemState.DIVERTED.value,
    ItemState.NOT_ACCEPTED.value,
    ItemState.TRANSFERRED_OUT.value,
}


@dataclass(frozen=True, slots=True)
class FigureRecord:
    """One item counted by a figure, as it stood at the report's ``as_of``.

    Attributes:
        item_id: the item.
        lookup_code: its lookup code (unformatted).
        registered_at: when it was registered.
        state: its state as of the report's instant (not necessarily today's).
        channel: its channel.
        category: its category.
        registering_unit_id: who registered it.
        handling_unit_id: who handles it today.
        confidential: an accusation (Art. 30): the web layer shows it to its handlers only.
        at: for a routing or a supervision, when it was made; else ``None``.
    """

    item_id: str
    lookup_code: str
    registered_at: dt.datetime
    state: ItemState
    channel: str
    category: str | None
    registering_unit_id: int
    handling_unit_id: int | None
    confidential: bool
    at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class FigureRecords:
    """The records of one figure: ``count`` equals the report's figure."""

    figure: str
    as_of: dt.datetime
    records: tuple[FigureRecord, ...]

    @property
    def count(self) -> int:
        """How many the figure counts."""
        return len(self.records)


def _instant(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), CHINA_TZ).astimezone(dt.UTC)


def _parse(figure: str) -> tuple[str, str | None]:
    kind, sep, value = figure.partition(":")
    if not sep and (kind in _PLAIN or kind in _ROUTINGS or kind == "supervision"):
        return kind, None
    if sep and kind in FIGURE_KINDS and value:
        return kind, value
    known = ", ".join([*_PLAIN, *_ROUTINGS, "supervision", *(f"{k}:<value>" for k in FIGURE_KINDS)])
    raise ValidationError(f"unknown report figure {figure[:60]!r}; known: {known}")


_COLUMNS = (
    ItemRow.id,
    ItemRow.lookup_code,
    ItemRow.registered_at,
    ItemRow.state,
    ItemRow.channel,
    ItemRow.category,
    ItemRow.registering_unit_id,
    ItemRow.handling_unit_id,
    ItemRow.confidential,
)


def _record(row: Any, state: str, at: dt.datetime | None = None) -> FigureRecord:
    return FigureRecord(
        item_id=row.id,
        lookup_code=row.lookup_code,
        registered_at=row.registered_at,
        state=ItemState(state),
        channel=row.channel,
        category=row.category,
        registering_unit_id=row.registering_unit_id,
        handling_unit_id=row.handling_unit_id,
        confidential=row.confidential,
        at=at,
    )


async def figure_records(
    session: AsyncSession,
    *,
    start: dt.date,
    end: dt.date,
    figure: str,
    unit_ids: Sequence[int] | None = None,
    by: Literal["registering", "handling"] = "registering",
    as_of: dt.datetime | None = None,
) -> FigureRecords:
    """The records counted by ``figure`` in the report of ``[start, end)`` (see the module).

    Args and defaults are those of :func:`records.statistics.annual_report`.

    Raises:
        ValidationError: an unknown figure, an empty period or a naive ``as_of``.
    """
    kind, value = _parse(figure)
    if end <= start:
        raise ValidationError(f"report period is empty: {start} .. {end}")
    if as_of is None:
        as_of = min(dt.datetime.now(dt.UTC), _instant(end))
    elif as_of.tzinfo is None:
        raise ValidationError(f"naive as_of {as_of!r}: give a timezone-aware instant")
    if kind in _ROUTINGS or kind == "supervision":
        records = await _acts(session, kind, start, end, unit_ids, as_of)
    else:
        records = await _items(session, kind, value, start, end, unit_ids, by, as_of)
    return FigureRecords(figure=figure, as_of=as_of, records=records)


async def _acts(
    session: AsyncSession,
    kind: str,
    start: dt.date,
    end: dt.date,
    unit_ids: Sequence[int] | None,
    as_of: dt.datetime,
) -> tuple[FigureRecord, ...]:
    """Routings or supervisions made by the units in the period, recorded before ``as_of``."""
    act: Any = ItemSupervision if kind == "supervision" else ItemTransfer
    unit_col = act.unit_id if kind == "supervision" else act.from_unit_id
    where: list[ColumnElement[bool]] = [
        act.at >= _instant(start),
        act.at < min(_instant(end), as_of),
    ]
    if kind != "supervision":
        where.append(act.kind == _ROUTINGS[kind].value)
    if unit_ids is not None:
        where.append(unit_col.in_(list(unit_ids)))
    rows = (
        await session.execute(
            select(*_COLUMNS, act.at.label("act_at"))
            .join(ItemRow, ItemRow.id == act.item_id)
            .where(*where)
            .order_by(act.at, act.id)
        )
    ).all()
    states = await _states_then(session, [r.id for r in rows], as_of)
    return tuple(_record(r, states.get(r.id, r.state), r.act_at) for r in rows)


async def _states_then(
    session: AsyncSession, item_ids: Sequence[str], as_of: dt.datetime
) -> dict[str, str]:
    """The state each item had at ``as_of``, for the items whose state moved since."""
    if not item_ids:
        return {}
    ev = ItemEvent
    rows = await session.execute(
        select(ev.item_id, ev.from_state)
        .where(
            ev.item_id.in_(sorted(set(item_ids))),
            ev.at >= as_of,
            ev.type.not_in(UNREPORTED_EVENTS),
        )
        .order_by(ev.item_id, ev.seq)
    )
    found: dict[str, str] = {}
    for item_id, from_state in rows:
        if item_id not in found and from_state is not None:
            found[item_id] = from_state
    return found


async def _resolved_then(
    session: AsyncSession, item_ids: Sequence[str], as_of: dt.datetime
) -> dict[str, bool]:
    """For the items whose outcome was recorded from ``as_of`` on: resolved as of then."""
    if not item_ids:
        return {}
    ev = ItemEvent
    rows = await session.execute(
        select(ev.item_id, ev.at, ev.data)
        .where(ev.item_id.in_(sorted(set(item_ids))), ev.type == EventType.SET_OUTCOME.value)
        .order_by(ev.item_id, ev.seq)
    )
    before: dict[str, bool] = {}
    changed: set[str] = set()
    for item_id, at, data in rows:
        if at >= as_of:
            changed.add(item_id)
        else:
            before[item_id] = bool((data or {}).get("resolved"))
    return {item_id: before.get(item_id, False) for item_id in changed}


async def _items(
    session: AsyncSession,
    kind: str,
    value: str | None,
    start: dt.date,
    end: dt.date,
    unit_ids: Sequence[int] | None,
    by: str,
    as_of: dt.datetime,
) -> tuple[FigureRecord, ...]:
    t = ItemRow
    where: list[ColumnElement[bool]] = [
        t.registered_at >= _instant(start),
        t.registered_at < _instant(end),
        t.registered_at < as_of,
    ]
    if unit_ids is not None:
        unit = t.registering_unit_id if by == "registering" else handling_unit_then(as_of)
        where.append(unit.in_(list(unit_ids)))
    # the columns a figure selects on that never change: asked of the database
    match kind:
        case "channel" | "type" | "category":
            where.append(getattr(t, kind) == value)
        case "online_platform":
            where += [t.channel == Channel.ONLINE.value, t.online_platform == value]
        case "subject_unit":
            where.append(t.subject_unit_id == _unit_id(value))
        case "from_above" | "led_by_other_unit" | "resolved":
            where.append(t.origin_level == _level(value))
            if kind != "from_above":
                where.append(t.led_by_other_unit.is_(kind == "led_by_other_unit"))
        case _:
            pass
    rows = (
        await session.execute(
            select(*_COLUMNS, t.resolved).where(*where).order_by(t.registered_at, t.id)
        )
    ).all()
    ids = [r.id for r in rows]
    states = await _states_then(session, ids, as_of)
    resolved = await _resolved_then(session, ids, as_of) if kind == "resolved" else {}
    out = []
    for r in rows:
        state = states.get(r.id, r.state)
        if _counts(kind, value, state, resolved.get(r.id, bool(r.resolved))):
            out.append(_record(r, state))
    return tuple(out)


def _counts(kind: str, value: str | None, state: str, resolved: bool) -> bool:
    match kind:
        case "concluded":
            return state == ItemState.CONCLUDED.value
        case "closed_otherwise":
            return state in _CLOSED_OTHER
        case "in_progress":
            return state != ItemState.CONCLUDED.value and state not in _CLOSED_OTHER
        case "state":
            return state == value
        case "resolved":
            return resolved
        case _:
            return True


def _unit_id(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError as exc:
        raise ValidationError(f"subject_unit needs a unit id, got {value!r:.20}") from exc


def _level(value: str | None) -> str:
    levels = [lv.value for lv in OriginLevel]
    if value not in levels:
        raise ValidationError(f"origin level {value!r:.20} is not one of {', '.join(levels)}")
    return value


def report_figures(report: AnnualReport) -> dict[str, int]:
    """Every figure of ``report`` that :func:`figure_records` lists, by its key."""
    figures = {
        "received": report.received,
        "concluded": report.concluded,
        "in_progress": report.in_progress,
        "closed_otherwise": report.closed_otherwise,
        "transfers": report.transfers,
        "assignments": report.assignments,
    }
    for kind, breakdown in (
        ("state", report.by_state),
        ("channel", report.by_channel),
        ("online_platform", report.by_online_platform),
        ("type", report.by_type),
        ("category", report.by_category),
        ("subject_unit", report.by_subject_unit),
    ):
        figures |= {f"{kind}:{key}": n for key, n in breakdown.counts.items()}
    for lf in report.from_above:
        figures[f"from_above:{lf.level.value}"] = lf.assigned
        figures[f"led_by_other_unit:{lf.level.value}"] = lf.led_by_other_unit
        figures[f"resolved:{lf.level.value}"] = lf.resolved
    return figures
