"""The scans behind the annual report: grouped counts, and corrections as of a date.

:func:`grouped_counts` reads today's derived columns of ``item_items`` in one grouped scan;
:func:`corrections_since` finds the items with an event from ``as_of`` on and gives their
figures as they are today (to take out) and as they stood at ``as_of`` (to put back).
:mod:`records.statistics` adds them up into the report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Select, case, false, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression

from records.item_models import ItemEvent, ItemRow, ItemTransfer, OriginLevel
from records.lifecycle import EventType

__all__ = [
    "LEVELS",
    "UNREPORTED_EVENTS",
    "Corrections",
    "Group",
    "corrections_since",
    "figures_of",
    "grouped_columns",
    "grouped_counts",
    "handling_unit_then",
    "no_index",
]

_T = TypeVar("_T")

#: (channel, state, type, online platform, count, the figures' counts)
Group = tuple[str, str, str, str | None, int, list[int]]

LEVELS = [lv.value for lv in OriginLevel]


def figures_of(
    n: int,
    *,
    level: str | None,
    led: bool | None,
    resolved: bool | None,
    accepted_on_time: bool | None,
    opinion_on_time: bool | None,
    eval_handling: bool | None,
    with_subject: int,
) -> list[int]:
    """The figure counts of ``n`` items sharing these values (see ``sums`` in the report)."""
    figures = [
        n if accepted_on_time else 0,
        0 if accepted_on_time is None else n,
        n if opinion_on_time else 0,
        0 if opinion_on_time is None else n,
        n if eval_handling else 0,
        0 if eval_handling is None else n,
        with_subject,
    ]
    for lv in LEVELS:
        here = level == lv
        figures += [n if here else 0, n if here and led else 0]
        figures.append(n if here and not led and resolved else 0)
    return figures


async def grouped_counts(
    session: AsyncSession, q: Callable[..., Select[Any]], sqlite: bool
) -> list[Group]:
    """Per (channel, state, type, platform): the count and the figures' counts.

    Two shapes of one scan, checked against the same recount in the tests. SQLite groups by
    every figure column in the order of ix_item_items_report and only counts (its
    aggregate steps per row cost more than the scan); PostgreSQL, whose planner takes the
    product of ten columns' distinct values for the number of groups and then sorts on disk,
    groups by four and counts with FILTER, hash-aggregated.
    """
    t = ItemRow
    levels = LEVELS
    out: list[Group] = []
    if sqlite:
        cols = grouped_columns(t)
        rows = (
            await session.execute(
                q(*cols, func.count(), func.count(t.subject_unit_id)).group_by(*cols)
            )
        ).all()
        for row in rows:
            channel, state, kind, platform, level, led, resolved = row[:7]
            accepted_on_time, opinion_on_time, eval_handling, n, n_subject = row[7:]
            n = int(n)
            figures = figures_of(
                n,
                level=level,
                led=led,
                resolved=resolved,
                accepted_on_time=accepted_on_time,
                opinion_on_time=opinion_on_time,
                eval_handling=eval_handling,
                with_subject=int(n_subject),
            )
            out.append((channel, state, kind, platform, n, figures))
        return out

    def count_if(cond: ColumnElement[bool]) -> Any:
        return func.count().filter(cond)

    aggregates = [
        count_if(t.accepted_on_time == true()),
        count_if(t.accepted_on_time.is_not(None)),
        count_if(t.opinion_on_time == true()),
        count_if(t.opinion_on_time.is_not(None)),
        count_if(t.eval_handling == true()),
        count_if(t.eval_handling.is_not(None)),
        func.count(t.subject_unit_id),
    ]
    for lv in levels:
        aggregates += [
            count_if(t.origin_level == lv),
            count_if((t.origin_level == lv) & (t.led_by_other_unit == true())),
            count_if(
                (t.origin_level == lv) & (t.led_by_other_unit == false()) & (t.resolved == true())
            ),
        ]
    dims = (t.channel, t.state, t.type, t.online_platform)
    rows = (await session.execute(q(*dims, func.count(), *aggregates).group_by(*dims))).all()
    for row in rows:
        out.append((row[0], row[1], row[2], row[3], int(row[4]), [int(v) for v in row[5:]]))
    return out


def grouped_columns(t: type[ItemRow]) -> tuple[Any, ...]:
    """The grouped columns, in the order of the index ix_item_items_report."""
    return (
        t.channel,
        t.state,
        t.type,
        t.online_platform,
        t.origin_level,
        t.led_by_other_unit,
        t.resolved,
        t.accepted_on_time,
        t.opinion_on_time,
        t.eval_handling,
    )


def no_index(col: ColumnElement[_T]) -> ColumnElement[_T]:
    """``+col``: the same value, but SQLite's planner will not use an index for the term."""
    return UnaryExpression(col, operator=operators.custom_op("+"), type_=col.type)


@dataclass(slots=True)
class Corrections:
    """Figures of the items changed since ``as_of``: added as they stood, taken as today."""

    groups: list[Group] = field(default_factory=list)
    categories: dict[str, int] = field(default_factory=dict)
    subjects: dict[str, int] = field(default_factory=dict)


def handling_unit_then(as_of: dt.datetime) -> Any:
    """The handling unit as of ``as_of`` (NULL before any routing).

    The last routing's target, or its sender when the target objected before ``as_of``
    (``object_to`` in records/items/handling.py sends the item back).
    """
    tr = ItemTransfer
    unit = case(
        (tr.objected_at.is_not(None) & (tr.objected_at < as_of), tr.from_unit_id),
        else_=tr.to_unit_id,
    )
    return (
        select(unit)
        .where(tr.item_id == ItemRow.id, tr.at < as_of)
        .order_by(tr.at.desc(), tr.id.desc())
        .limit(1)
        .scalar_subquery()
    )


#: events that change nothing a report reads: an item with only these since as_of needs no
#: correction (a notice import notes every moved deadline; extensions and clock stops only
#: move due dates)
UNREPORTED_EVENTS = [
    e.value
    for e in (EventType.NOTE, EventType.EXTEND, EventType.STOP_CLOCK, EventType.RESUME_CLOCK)
]


def _flag(cond: ColumnElement[bool]) -> Any:
    return case((cond, 1), else_=0)


async def corrections_since(
    session: AsyncSession,
    period: Sequence[ColumnElement[bool]],
    as_of: dt.datetime,
    unit_ids: Sequence[int] | None,
    by: str,
    sqlite: bool,
    period_open: bool,
) -> Corrections:
    """The items of the period with an event at or after ``as_of``, today and as they stood.

    A year re-read as of its end touches the items still open then (a tenth of the 2021
    report's). One pass over the events from ``as_of`` on (``ix_item_events_at`` covers it)
    finds them with what changed; nothing before ``as_of`` is read, because every event
    records the state it left (``from_state``): the first event from ``as_of`` on left the
    state as of ``as_of``. The flags set once by the event that fixes them (acceptance,
    opinion: the lifecycle allows each once; the handling rating has its own time) are
    today's unless that event came later. Only an outcome changed after ``as_of`` (rare)
    and the handling unit (``by="handling"``) are looked up per item. Folding each item in
    Python instead cost 60 µs an item (3 s for 50,000 changed items).
    """
    t = ItemRow
    ev = ItemEvent
    out = Corrections()
    # +item_id: grouped in a temporary B-tree; otherwise SQLite reads all events in
    # item_id order (to skip that sort) instead of the index range from as_of on.
    item_id = no_index(ev.item_id.expression) if sqlite else ev.item_id.expression
    after = (
        select(
            item_id.label("item_id"),
            func.min(ev.seq).label("first_seq"),
            func.max(_flag(ev.type == EventType.ACCEPT.value)).label("accepted_after"),
            func.max(_flag(ev.type == EventType.ISSUE_OPINION.value)).label("opinion_after"),
            func.max(_flag(ev.type == EventType.SET_OUTCOME.value)).label("outcome_after"),
        )
        .where(ev.at >= as_of, ev.type.not_in(UNREPORTED_EVENTS))
        .group_by(item_id)
        .subquery("after")
    )
    first = aliased(ItemEvent, name="first_after")
    outcome = aliased(ItemEvent, name="outcome")
    resolved_before = (
        select(outcome.data["resolved"].as_boolean())
        .where(
            outcome.item_id == t.id,
            outcome.at < as_of,
            outcome.type == EventType.SET_OUTCOME.value,
        )
        .order_by(outcome.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    unit_now = t.registering_unit_id if by == "registering" else t.handling_unit_id
    unit_then = t.registering_unit_id if by == "registering" else handling_unit_then(as_of)
    now_in: ColumnElement[bool] = true()
    then_in: ColumnElement[bool] = t.registered_at < as_of
    if unit_ids is not None:
        now_in = unit_now.in_(list(unit_ids))
        then_in = then_in & unit_then.in_(list(unit_ids))
    both = [
        t.channel,
        t.type,
        t.online_platform,
        t.origin_level,
        t.led_by_other_unit,
    ]
    now = [t.state, t.resolved, t.accepted_on_time, t.opinion_on_time, t.eval_handling]
    then = [
        func.coalesce(first.from_state, t.state),
        case(
            (after.c.outcome_after == 1, func.coalesce(resolved_before, false())),
            else_=t.resolved,
        ),
        case((after.c.accepted_after == 1, None), else_=t.accepted_on_time),
        case((after.c.opinion_after == 1, None), else_=t.opinion_on_time),
        case((t.eval_handling_at < as_of, t.eval_handling), else_=None),
    ]
    membership = [_flag(now_in), _flag(then_in)]

    def changed(*cols: Any) -> Select[Any]:
        return (
            select(*cols)
            .select_from(after)
            .join(t, t.id == after.c.item_id)
            .join(first, (first.item_id == after.c.item_id) & (first.seq == after.c.first_seq))
            .where(*period)
        )

    labelled = [c.label(f"c{k}") for k, c in enumerate([*both, *now, *then, *membership])]
    sub = changed(*labelled, t.subject_unit_id.label("subject")).subquery()
    keys = [sub.c[f"c{k}"] for k in range(len(labelled))]
    rows = (
        await session.execute(
            select(*keys, func.count(), func.count(sub.c.subject)).group_by(*keys)
        )
    ).all()
    if not rows:
        return out
    for row in rows:
        channel, kind, platform, level, led = row[0:5]
        n, n_subject = int(row[17]), int(row[18])
        for values, member, sign in ((row[5:10], row[15], -1), (row[10:15], row[16], 1)):
            if not member:
                continue
            state, resolved, accepted_on_time, opinion_on_time, eval_handling = values
            figures = figures_of(
                sign * n,
                level=level,
                led=led,
                resolved=resolved,
                accepted_on_time=accepted_on_time,
                opinion_on_time=opinion_on_time,
                eval_handling=eval_handling,
                with_subject=sign * n_subject,
            )
            out.groups.append((channel, state, kind, platform, sign * n, figures))
    if by == "registering" and not period_open:
        # Category and unit complained about never change, and neither does who registered
        # the item: only items registered after as_of move in or out of these counts.
        return out
    cat_sub = changed(
        t.category.label("category"),
        t.subject_unit_id.label("subject"),
        membership[0].label("now_in"),
        membership[1].label("then_in"),
    ).subquery()
    cat_keys = [cat_sub.c.category, cat_sub.c.subject, cat_sub.c.now_in, cat_sub.c.then_in]
    cat_rows = await session.execute(select(*cat_keys, func.count()).group_by(*cat_keys))
    for cat_row in cat_rows:
        category, subject, was, is_then, n = (cat_row[k] for k in range(5))
        delta = (int(is_then) - int(was)) * int(n)
        if not delta:
            continue
        if category is not None:
            out.categories[category] = out.categories.get(category, 0) + delta
        if subject is not None:
            out.subjects[str(subject)] = out.subjects.get(str(subject), 0) + delta
    return out
