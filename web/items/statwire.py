"""The wire model of the statistics of a period (``GET /api/stats``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from records.item_models import OriginLevel, VisitKind
from web.items.common import CountBy
from web.rest import Date, Wire


class Rate(Wire):
    """A rate: ``percent`` is None when the denominator is 0."""

    numerator: int
    denominator: int
    percent: float | None


class Breakdown(Wire):
    """Counts by a key, their sum and the total they should add up to."""

    name: str
    counts: dict[str, int]
    sum: int
    total: int
    total_name: str
    mismatch: str | None


class Rates(Wire):
    """The rates of the period."""

    completion: Rate
    timely_acceptance: Rate
    on_time_completion: Rate
    satisfaction: Rate
    participation: Rate


class FromAbove(Wire):
    """Items assigned from a level above."""

    level: OriginLevel
    assigned: int
    led_by_other_unit: int
    resolved: int
    resolution_rate: Rate


class SessionFigures(Wire):
    """Sessions held in the period."""

    by_kind: dict[str, int]
    by_kind_and_level: dict[str, int]
    training_attendance: dict[str, int]
    visit_ratings: dict[str, int]
    visit_batches: int
    visit_person_times: int
    leader_receptions: int


class BatchesPersons(Wire):
    """Batches and persons."""

    batches: int
    persons: int


class Change(Wire):
    """Year-on-year change in percent (None without last year's figure)."""

    batches: float | None
    persons: float | None


class VisitKindFigures(Wire):
    """Visits of one kind, with last year's same period."""

    kind: VisitKind
    label: str
    batches: int
    persons: int
    collective_batches: int
    collective_persons: int
    previous: BatchesPersons
    change_percent: Change


class SupervisionFigures(Wire):
    """Supervisions in the period."""

    supervisions: int
    items: int


class VisitFigures(Wire):
    """The visits section."""

    previous_start: Date
    previous_end: Date
    kinds: list[VisitKindFigures]
    supervision: SupervisionFigures


#: a key and its count
Pair = Annotated[tuple[str, int], Field()]


class Report(Wire):
    """The statistics of a period for a unit subtree."""

    start: Date
    end: Date
    unit_count: int | None
    unit_id: int | None
    by: CountBy
    #: figure key (concluded, channel:letter ...) -> its records (GET /api/stats/records)
    links: dict[str, str]
    received: int
    concluded: int
    in_progress: int
    closed_otherwise: int
    transfers: int
    assignments: int
    rates: Rates
    from_above: list[FromAbove]
    by_channel: Breakdown
    by_online_platform: Breakdown
    by_type: Breakdown
    by_state: Breakdown
    by_category: Breakdown
    by_subject_unit: Breakdown
    top_categories: list[Pair]
    top_subject_units: list[Pair]
    mismatches: list[str]
    sessions: SessionFigures
    visits: VisitFigures
