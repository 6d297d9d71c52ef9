"""部分办结 (part-concluded) and 已上报待确认 (reported, awaiting confirmation) in the table.

Part-concluded: the handling unit answers part of the requests within the 60 days (Art. 34);
the period keeps running from the acceptance and the opinion on the rest ends it.
Reported: an assigned (交办) item's completion report awaits the assigning body, which
confirms it (办结, after the petitioner's review window, as a conclusion) or sends it back;
the review window runs on from the opinion's delivery meanwhile.
"""

from __future__ import annotations

import datetime as dt

import pytest

from config.errors import InvalidTransition, ValidationError
from records.calendar import HolidayCalendar
from records.lifecycle import (
    STATE_LABELS_ZH,
    TERMINAL_STATES,
    EventType,
    HistoryEvent,
    ItemState,
    current_deadline,
    replay,
)
from tests.records.lifecycle_support import at, then

E = EventType
S = ItemState

ACCEPTED = [
    HistoryEvent(at(2024, 3, 1), E.REGISTER),
    HistoryEvent(at(2024, 3, 2), E.ASSIGN, {"due": "2024-06-30"}),
    HistoryEvent(at(2024, 3, 4), E.RECEIVE),
    HistoryEvent(at(2024, 3, 5), E.ACCEPT),
]
OPINION = [*ACCEPTED, HistoryEvent(at(2024, 4, 10), E.ISSUE_OPINION)]


def test_the_two_states_are_named_and_not_terminal() -> None:
    assert STATE_LABELS_ZH[S.PART_CONCLUDED] == "部分办结"
    assert STATE_LABELS_ZH[S.REPORTED] == "已上报待确认"
    assert S.PART_CONCLUDED not in TERMINAL_STATES
    assert S.REPORTED not in TERMINAL_STATES


def test_part_concluded_keeps_the_handling_period_from_the_acceptance(
    calendar: HolidayCalendar,
) -> None:
    part = replay([*ACCEPTED, HistoryEvent(at(2024, 4, 1), E.CONCLUDE_PART)], calendar)
    assert part.state is S.PART_CONCLUDED
    due = current_deadline(part, calendar)
    assert due is not None
    # 5 Mar + 60 = Sat 4 May, in the Labour Day holiday (1-5 May) -> Mon 6 May; not 60 days
    # from the part answer of 1 April
    assert (due.what, due.due) == ("opinion", dt.date(2024, 5, 6))
    # extended once (Art. 34) while part-concluded, and the rest answered in time
    ext = HistoryEvent(at(2024, 5, 6), E.EXTEND, {"days": 10, "approved_by": 9, "reason": "勘查"})
    extended = then([*ACCEPTED, HistoryEvent(at(2024, 4, 1), E.CONCLUDE_PART)], ext, calendar)
    extended_due = current_deadline(extended, calendar)
    assert extended_due is not None
    assert extended_due.due == dt.date(2024, 5, 14)  # 5 Mar + 70 days, a Tuesday
    rest = replay(
        [
            *ACCEPTED,
            HistoryEvent(at(2024, 4, 1), E.CONCLUDE_PART),
            ext,
            HistoryEvent(at(2024, 5, 14), E.ISSUE_OPINION),
        ],
        calendar,
    )
    assert (rest.state, rest.opinion_on_time) == (S.OPINION_ISSUED, True)
    late = replay(
        [
            *ACCEPTED,
            HistoryEvent(at(2024, 4, 1), E.CONCLUDE_PART),
            HistoryEvent(at(2024, 5, 7), E.ISSUE_OPINION),
        ],
        calendar,
    )
    assert late.opinion_on_time is False


def test_part_concluded_refuses_what_its_state_does_not_allow(calendar: HolidayCalendar) -> None:
    part = [*ACCEPTED, HistoryEvent(at(2024, 4, 1), E.CONCLUDE_PART)]
    with pytest.raises(InvalidTransition, match="cannot 'conclude' an item in state 'part_conc"):
        then(part, HistoryEvent(at(2024, 4, 2), E.CONCLUDE), calendar)
    with pytest.raises(InvalidTransition, match="cannot 'conclude_part' an item in state 'part"):
        then(part, HistoryEvent(at(2024, 4, 2), E.CONCLUDE_PART), calendar)
    # only an accepted item can be part-concluded
    with pytest.raises(InvalidTransition, match="in state 'received'"):
        then(ACCEPTED[:3], HistoryEvent(at(2024, 3, 5), E.CONCLUDE_PART), calendar)


def test_an_assigned_item_reports_and_the_assigning_body_confirms(
    calendar: HolidayCalendar,
) -> None:
    delivered = [*OPINION, HistoryEvent(at(2024, 4, 12), E.DELIVER, {"delivered_on": "2024-04-12"})]
    reported = [*delivered, HistoryEvent(at(2024, 4, 15), E.REPORT)]
    t = replay(reported, calendar)
    assert t.state is S.REPORTED
    window = current_deadline(t, calendar)
    assert window is not None
    # the review window runs on from the delivery (12 Apr + 30 = Sun 12 May -> Mon 13 May),
    # not from the report
    assert (window.what, window.due, window.obligor) == (
        "review_request",
        dt.date(2024, 5, 13),
        "petitioner",
    )
    # confirming is concluding: not while the petitioner may still ask for a review ...
    with pytest.raises(ValidationError, match="may still ask for a review until 2024-05-13"):
        then(reported, HistoryEvent(at(2024, 4, 20), E.CONFIRM), calendar)
    early = then(
        reported, HistoryEvent(at(2024, 4, 20), E.CONFIRM, {"petitioner_waived": True}), calendar
    )
    assert early.state is S.CONCLUDED
    assert then(reported, HistoryEvent(at(2024, 5, 14), E.CONFIRM), calendar).state is S.CONCLUDED
    # ... who may ask for one while the report waits
    review = then(reported, HistoryEvent(at(2024, 5, 1), E.REQUEST_REVIEW), calendar)
    assert review.state is S.REVIEW_REQUESTED
    # sent back: the unit handles it further; the same window, then a new report
    back = replay([*reported, HistoryEvent(at(2024, 4, 20), E.RETURN_REPORT)], calendar)
    assert back.state is S.OPINION_ISSUED
    again = current_deadline(back, calendar)
    assert again is not None
    assert again.due == dt.date(2024, 5, 13)
    assert (
        then(
            [*reported, HistoryEvent(at(2024, 4, 20), E.RETURN_REPORT)],
            HistoryEvent(at(2024, 4, 25), E.REPORT),
            calendar,
        ).state
        is S.REPORTED
    )


def test_a_report_without_an_assigning_body_is_refused(calendar: HolidayCalendar) -> None:
    transferred = [
        HistoryEvent(at(2024, 3, 1), E.REGISTER),
        HistoryEvent(at(2024, 3, 2), E.TRANSFER),
        HistoryEvent(at(2024, 3, 4), E.RECEIVE),
        HistoryEvent(at(2024, 3, 5), E.ACCEPT),
        HistoryEvent(at(2024, 4, 10), E.ISSUE_OPINION),
    ]
    with pytest.raises(ValidationError, match=r"only an assigned \(交办\) item"):
        then(transferred, HistoryEvent(at(2024, 4, 15), E.REPORT), calendar)
    # assigned from above the district (its origin level): reported to that body
    from_above = then(
        transferred, HistoryEvent(at(2024, 4, 15), E.REPORT, {"from_above": True}), calendar
    )
    assert from_above.state is S.REPORTED
    # a report before the opinion is not a completion report
    with pytest.raises(InvalidTransition, match="cannot 'report' an item in state 'accepted'"):
        then(ACCEPTED, HistoryEvent(at(2024, 4, 15), E.REPORT), calendar)
    # and a confirmation needs a report
    with pytest.raises(InvalidTransition, match="cannot 'confirm' an item in state 'opinion_iss"):
        then(OPINION, HistoryEvent(at(2024, 5, 20), E.CONFIRM), calendar)


def test_delivery_is_recorded_after_the_report_too(calendar: HolidayCalendar) -> None:
    reported = [*OPINION, HistoryEvent(at(2024, 4, 15), E.REPORT)]
    # delivered on 12 Apr, recorded while the report waits: before the report, after the opinion
    t = then(
        reported, HistoryEvent(at(2024, 4, 16), E.DELIVER, {"delivered_on": "2024-04-12"}), calendar
    )
    assert t.delivered_on == dt.date(2024, 4, 12)
    with pytest.raises(ValidationError, match="between the opinion of 2024-04-10"):
        then(
            reported,
            HistoryEvent(at(2024, 4, 16), E.DELIVER, {"delivered_on": "2024-04-09"}),
            calendar,
        )
