"""Frozen annual reports: the figures as filed, stored with their hash, checked on demand.

A report computed as of a date is reproducible from the append-only history
(records/statistics.py), as long as nobody records an event dated before that date later
(a backdated conclusion would change it). Freezing stores what was filed: the report's
CSV (``report_csv``: every figure, sum and mismatch, and the ``as_of`` it was computed at),
its SHA-256 and the parameters; :func:`check_frozen` recomputes it with the same
parameters and lists every figure that differs, and whether the stored text still matches
its hash. Rows are never updated.

Besides the item figures the CSV holds the visits (batches, person-times and collective ones
per kind: ``visits.walk_in`` ...) and the supervisions (``supervision``) of the period, both
counted from the records written before ``as_of``. A report frozen before they were added
holds only the item figures and is checked against those alone. Backlog cases are not
frozen: whether a case is resolved is the item's flag today, with no history to read it as
of a date.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import JSON, Date, Integer, String, Text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from config.errors import NotFound, RecordsError
from records.base import Base, UTCDateTime, created_at, intpk
from records.bureau_report import supervisions_as_of
from records.items.visits import visit_figures
from records.statistics import AnnualReport, annual_report, report_csv

__all__ = ["FrozenCheck", "FrozenReport", "FrozenReportRow", "check_frozen", "freeze_report"]


class FrozenReportRow(Base):
    """A report as filed (never updated)."""

    __tablename__ = "frozen_reports"

    id: Mapped[intpk]
    start: Mapped[dt.date] = mapped_column(Date)
    end: Mapped[dt.date] = mapped_column(Date)
    as_of: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    by: Mapped[str] = mapped_column(String(16))
    #: the unit subtree, or NULL for the whole district
    unit_ids: Mapped[list[int] | None] = mapped_column(JSON)
    csv: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    frozen_by: Mapped[int | None] = mapped_column(Integer)  # accounts.id
    frozen_at: Mapped[created_at]


@dataclass(frozen=True, slots=True)
class FrozenReport:
    """A frozen report and the figures it froze."""

    id: int
    sha256: str
    csv: str
    report: AnnualReport


@dataclass(frozen=True, slots=True)
class FrozenCheck:
    """A frozen report compared with a recomputation.

    Attributes:
        id: the frozen report.
        intact: the stored text still has the stored hash.
        reproduced: the recomputation gives the same text.
        differences: one line per figure that differs, e.g.
            ``totals/concluded: frozen 636, now 637``.
    """

    id: int
    intact: bool
    reproduced: bool
    differences: tuple[str, ...]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def freeze_report(
    session: AsyncSession,
    *,
    start: dt.date,
    end: dt.date,
    as_of: dt.datetime | None = None,
    unit_ids: Sequence[int] | None = None,
    by: Literal["registering", "handling"] = "registering",
    frozen_by: int | None,
) -> FrozenReport:
    """Compute the report (see :func:`annual_report`) and store it as filed.

    The caller audits and commits.
    """
    report = await annual_report(
        session, start=start, end=end, as_of=as_of, unit_ids=unit_ids, by=by
    )
    text = report_csv(report) + await _activity_csv(session, report, unit_ids)
    row = FrozenReportRow(
        start=start,
        end=end,
        as_of=report.as_of,
        by=by,
        unit_ids=None if unit_ids is None else sorted(set(unit_ids)),
        csv=text,
        sha256=_sha256(text),
        frozen_by=frozen_by,
    )
    session.add(row)
    try:
        await session.flush()
    except SQLAlchemyError as exc:
        raise RecordsError(f"cannot store the frozen report: {exc}") from exc
    return FrozenReport(id=row.id, sha256=row.sha256, csv=text, report=report)


#: the first row of the visits section (absent from reports frozen before it was added)
_VISITS_MARK = "\nvisits."


async def _activity_csv(
    session: AsyncSession, report: AnnualReport, unit_ids: Sequence[int] | None
) -> str:
    """The visits and supervision sections, as of the report's ``as_of`` (CSV rows)."""
    visits = await visit_figures(
        session, start=report.start, end=report.end, unit_ids=unit_ids, as_of=report.as_of
    )
    supervisions, supervised = await supervisions_as_of(
        session, report.start, report.end, unit_ids, report.as_of
    )
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for k in visits.kinds:
        section = f"visits.{k.kind.value}"
        w.writerow([section, "batches", k.batches, "", ""])
        w.writerow([section, "persons", k.persons, "", ""])
        w.writerow([section, "collective_batches", k.collective_batches, "", ""])
        w.writerow([section, "collective_persons", k.collective_persons, "", ""])
    w.writerow(["supervision", "supervisions", supervisions, "", ""])
    w.writerow(["supervision", "items", supervised, "", ""])
    return buf.getvalue()


def _figures(text: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    rows = list(csv.reader(io.StringIO(text)))
    return {(r[0], r[1]): tuple(r[2:]) for r in rows[1:] if len(r) >= 2}


async def check_frozen(session: AsyncSession, frozen_id: int) -> FrozenCheck:
    """Recompute a frozen report with its parameters and compare.

    Raises:
        NotFound: no frozen report with that id.
    """
    row = await session.get(FrozenReportRow, frozen_id)
    if row is None:
        raise NotFound(f"no frozen report {frozen_id}")
    by: Literal["registering", "handling"] = "handling" if row.by == "handling" else "registering"
    report = await annual_report(
        session, start=row.start, end=row.end, as_of=row.as_of, unit_ids=row.unit_ids, by=by
    )
    now = report_csv(report)
    if _VISITS_MARK in row.csv:
        now += await _activity_csv(session, report, row.unit_ids)
    frozen, recomputed = _figures(row.csv), _figures(now)
    differences = []
    for key in sorted(frozen.keys() | recomputed.keys()):
        before, after = frozen.get(key), recomputed.get(key)
        if before != after:
            shown_before = before[0] if before else "—"
            shown_after = after[0] if after else "—"
            differences.append(f"{key[0]}/{key[1]}: frozen {shown_before}, now {shown_after}")
    return FrozenCheck(
        id=row.id,
        intact=_sha256(row.csv) == row.sha256,
        reproduced=now == row.csv,
        differences=tuple(differences),
    )
