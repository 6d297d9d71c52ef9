"""Every figure of the 2021 report links to exactly the records it counts, as of 2021-12-31.

The fixture of test_statistics_as_of (706 items of 2021, ten concluded and more changed in
January 2022): each figure's list has the figure's length, and holds the items as they
stood then (the 636 concluded, not today's 646).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.errors import ValidationError
from records.lifecycle import ItemState
from records.report_records import figure_records, report_figures
from records.statistics import annual_report
from tests.records.test_statistics_as_of import (
    HANDLER,
    YEAR,
    _activity,
    _at,
    _item_id,
    add_2022,
    histories,
    load_2021,
)


@pytest.mark.parametrize("by", ["registering", "handling"])
async def test_each_figure_lists_as_many_records_as_it_counts_as_of_the_year_end(
    sessions: async_sessionmaker[AsyncSession], by: Any
) -> None:
    then, later = histories()
    await load_2021(sessions, then)
    await add_2022(sessions, then, later)
    units = [HANDLER] if by == "handling" else None
    async with sessions() as s:
        report = await annual_report(s, start=YEAR[0], end=YEAR[1], unit_ids=units, by=by)
        figures = report_figures(report)
        assert figures["concluded"] == 636  # by either unit: all were handled by HANDLER
        for figure, n in figures.items():
            found = await figure_records(
                s, start=YEAR[0], end=YEAR[1], figure=figure, unit_ids=units, by=by
            )
            assert found.count == n, figure
            assert found.as_of == report.as_of
        concluded = await figure_records(
            s, start=YEAR[0], end=YEAR[1], figure="concluded", unit_ids=units, by=by
        )
        today = await figure_records(
            s,
            start=YEAR[0],
            end=YEAR[1],
            figure="concluded",
            unit_ids=units,
            by=by,
            as_of=dt.datetime.now(dt.UTC),
        )
    assert {r.state for r in concluded.records} == {ItemState.CONCLUDED}
    # the ten concluded in January 2022 are today's, not the year's
    assert today.count == concluded.count + 10
    assert {r.item_id for r in concluded.records} < {r.item_id for r in today.records}


async def test_an_unknown_figure_is_refused_by_name(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s:
        with pytest.raises(ValidationError, match="unknown report figure 'recieved'; known: "):
            await figure_records(s, start=YEAR[0], end=YEAR[1], figure="recieved")
        with pytest.raises(ValidationError, match="origin level 'county' is not one of"):
            await figure_records(s, start=YEAR[0], end=YEAR[1], figure="from_above:county")


async def test_supervisions_are_listed_as_of_the_year_end(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    then, _later = histories()
    await load_2021(sessions, then)
    async with sessions() as s:
        await _activity(s, recorded=_at(dt.date(2021, 12, 31)), when=dt.date(2021, 12, 1))
        await _activity(s, recorded=_at(dt.date(2022, 1, 5)), when=dt.date(2022, 1, 4))
        await s.commit()
    async with sessions() as s:
        found = await figure_records(s, start=YEAR[0], end=YEAR[1], figure="supervision")
    # the two of December 2021, not the two of January 2022
    assert found.count == 2
    assert {r.item_id for r in found.records} == {_item_id(650)}
    assert all(r.at is not None and r.at < found.as_of for r in found.records)
