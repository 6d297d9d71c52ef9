"""Lifecycle: the routes issue 17 added, on the table and on a database.

Extensions, direct acceptance, Art. 30, backlog close, the review window, review one level up,
organs outside the district.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.errors import Conflict, InvalidTransition, ValidationError
from records import items as svc
from records.calendar import HolidayCalendar
from records.item_models import ItemType, Outcome
from records.lifecycle import (
    HistoryEvent,
    ItemState,
    allowed_events,
    current_deadline,
    replay,
)
from tests.records.lifecycle_support import KEYRING, E, S, at, new_item, then, walk

# ------------------------------------------------------------------ routes of issue 17


def test_extension_after_the_60_days_is_refused_and_only_one_is_allowed(
    calendar: HolidayCalendar,
) -> None:
    accepted = [
        HistoryEvent(at(2024, 3, 1), E.REGISTER),
        HistoryEvent(at(2024, 3, 2), E.TRANSFER),
        HistoryEvent(at(2024, 3, 4), E.RECEIVE),
        HistoryEvent(at(2024, 3, 5), E.ACCEPT),
    ]
    t = replay(accepted, calendar)
    opinion = current_deadline(t, calendar)
    assert opinion is not None
    # 5 Mar + 60 = Sat 4 May, in the Labour Day holiday (1-5 May) -> Mon 6 May
    assert opinion.due == dt.date(2024, 5, 6)
    ext = {"days": 10, "approved_by": 9, "reason": "需现场勘查"}
    on_last_day = replay([*accepted, HistoryEvent(at(2024, 5, 6), E.EXTEND, ext)], calendar)
    assert [e.days for e in on_last_day.extensions] == [10]
    with pytest.raises(
        ValidationError,
        match="approved on 2024-05-07 is too late: the 60-day handling period ended on 2024-05-06",
    ):
        then(accepted, HistoryEvent(at(2024, 5, 7), E.EXTEND, ext), calendar)
    # one extension (Art. 34): a second is refused even though 10 + 5 stays within 30 days
    twice = [
        *accepted,
        HistoryEvent(at(2024, 5, 6), E.EXTEND, ext),
        HistoryEvent(at(2024, 5, 7), E.EXTEND, {**ext, "days": 5}),
    ]
    with pytest.raises(ValidationError, match="already extended by 10 days on 2024-05-06"):
        then(twice[:-1], twice[-1], calendar)
    # ... but a history recorded before the rule (two extensions, one late) still replays,
    # so the item can move on and a holiday notice import can recompute it
    legacy = replay([*twice[:-2], HistoryEvent(at(2024, 5, 8), E.EXTEND, ext), twice[-1]], calendar)
    assert [e.days for e in legacy.extensions] == [10, 5]


ROUTES: dict[str, tuple[list[HistoryEvent], ItemState, str | None]] = {
    "the registering unit accepts directly": (
        [HistoryEvent(at(2024, 3, 1), E.REGISTER), HistoryEvent(at(2024, 3, 4), E.ACCEPT)],
        S.ACCEPTED,
        "opinion",
    ),
    "the handling unit refuses in writing after routing": (
        [
            HistoryEvent(at(2024, 3, 1), E.REGISTER),
            HistoryEvent(at(2024, 3, 2), E.TRANSFER),
            HistoryEvent(at(2024, 3, 4), E.RECEIVE),
            HistoryEvent(at(2024, 3, 8), E.NOT_ACCEPT),
        ],
        S.NOT_ACCEPTED,
        None,
    ),
    "the handling unit diverts to a legal procedure (Art. 31)": (
        [
            HistoryEvent(at(2024, 3, 1), E.REGISTER),
            HistoryEvent(at(2024, 3, 2), E.ASSIGN, {"due": "2024-04-30"}),
            HistoryEvent(at(2024, 3, 4), E.RECEIVE),
            HistoryEvent(at(2024, 3, 8), E.DIVERT),
        ],
        S.DIVERTED,
        None,
    ),
    "a transfer never acknowledged still has a deadline": (
        [HistoryEvent(at(2024, 3, 1), E.REGISTER), HistoryEvent(at(2024, 3, 2), E.TRANSFER)],
        S.TRANSFERRED,
        "receive",
    ),
    "an assignment without a report date too": (
        [HistoryEvent(at(2024, 3, 1), E.REGISTER), HistoryEvent(at(2024, 3, 2), E.ASSIGN)],
        S.ASSIGNED,
        "receive",
    ),
    "an assignment with a report date keeps that one": (
        [
            HistoryEvent(at(2024, 3, 1), E.REGISTER),
            HistoryEvent(at(2024, 3, 2), E.ASSIGN, {"due": "2024-04-30"}),
        ],
        S.ASSIGNED,
        "assignment_report",
    ),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_new_routes_of_the_table(calendar: HolidayCalendar, route: str) -> None:
    history, final, due_what = ROUTES[route]
    t = replay(history, calendar)
    assert t.state is final
    deadline = current_deadline(t, calendar)
    assert (deadline.what if deadline else None) == due_what


def test_direct_acceptance_and_a_never_acknowledged_transfer_are_dated(
    calendar: HolidayCalendar,
) -> None:
    direct = replay(ROUTES["the registering unit accepts directly"][0], calendar)
    assert direct.accepted_on == dt.date(2024, 3, 4)
    assert direct.accepted_on_time is True
    waiting = current_deadline(
        replay(ROUTES["a transfer never acknowledged still has a deadline"][0], calendar), calendar
    )
    assert waiting is not None
    # 2 Mar + 15 = Sun 17 Mar, a rest day -> Mon 18 Mar
    assert (waiting.due, waiting.article, waiting.obligor) == (
        dt.date(2024, 3, 18),
        "信访工作条例 (2022) Art. 23(3)",
        "unit",
    )


async def test_never_acknowledged_transfer_is_overdue_for_the_receiving_unit(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with sessions() as s:
        item = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        await walk(s, calendar, item.id, [(E.TRANSFER, at(2024, 3, 2), {})])
        overdue = await svc.list_overdue(s, [20], today=dt.date(2024, 3, 20))
    assert [(d.item_id, d.due_on, d.due_what) for d in overdue] == [
        (item.id, dt.date(2024, 3, 18), "receive")
    ]


async def test_direct_acceptance_by_the_competent_unit_only(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with sessions() as s:
        item = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        with pytest.raises(
            ValidationError, match="competent unit 1 itself; unit 20 cannot accept on its behalf"
        ):
            await svc.accept(
                s, calendar, item.id, account_id=6, at=at(2024, 3, 2), acting_unit_id=20
            )
        item = await svc.accept(
            s, calendar, item.id, account_id=5, at=at(2024, 3, 2), acting_unit_id=1
        )
        assert (item.state, item.handling_unit_id, item.due_what) == (S.ACCEPTED, 1, "opinion")
        history = await svc.item_history(s, item.id)
        assert [h.type for h in history] == [E.REGISTER, E.ACCEPT]  # no transfer to itself
        routed = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        await walk(
            s,
            calendar,
            routed.id,
            [(E.TRANSFER, at(2024, 3, 2), {}), (E.RECEIVE, at(2024, 3, 4), {})],
        )
        # the registering unit (a reception centre, say) cannot accept for unit 20
        with pytest.raises(ValidationError, match="competent unit 20 itself; unit 1 cannot"):
            await svc.accept(s, calendar, routed.id, account_id=5, acting_unit_id=1)


async def test_an_accusation_never_goes_to_the_unit_it_accuses(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    with pytest.raises(ValidationError, match="needs the accused unit"):
        svc._validate_new(new_item(type=ItemType.ACCUSATION, subject_unit_id=None))
    async with sessions() as s:
        item = await svc.register_item(
            s,
            calendar,
            new_item(type=ItemType.ACCUSATION),
            keyring=KEYRING,
            account_id=5,
            at=at(2024, 3, 1),
        )
        with pytest.raises(
            ValidationError, match="accuses unit 30: it cannot be transferred to the unit it"
        ):
            await svc.transfer(s, calendar, item.id, 30, account_id=5, at=at(2024, 3, 2))
        with pytest.raises(ValidationError, match="cannot be assigned .*Art. 30"):
            await svc.assign(s, calendar, item.id, 30, due=None, account_id=5, at=at(2024, 3, 2))
        await svc.set_handler(s, item.id, 8, recused=True, reason="亲属")
        with pytest.raises(ValidationError, match="account 8 is recused"):
            await svc.transfer(
                s, calendar, item.id, 20, account_id=5, at=at(2024, 3, 2), handler_account_id=8
            )
        moved = await svc.transfer(
            s, calendar, item.id, 20, account_id=5, at=at(2024, 3, 2), handler_account_id=6
        )
        assert (moved.state, moved.handling_unit_id, moved.handler_account_ids) == (
            S.TRANSFERRED,
            20,
            (6,),
        )
        history = await svc.item_history(s, item.id)
        assert history[-1].data["handler_account_id"] == 6


async def test_backlog_close_future_month_and_named_units(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with sessions() as s:
        item = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        await walk(
            s,
            calendar,
            item.id,
            [
                (E.TRANSFER, at(2024, 3, 2), {}),
                (E.RECEIVE, at(2024, 3, 4), {}),
                (E.ACCEPT, at(2024, 3, 5), {}),
            ],
        )
        await svc.add_co_handler(s, item.id, 44)
        case = await svc.flag_backlog(
            s,
            item.id,
            leader_account_id=99,
            team="专班",
            resolution_plan="方案",
            stability_plan="稳控",
            ledger="台账",
            unit_ids=[30],
            account_id=5,
            at=at(2024, 3, 5),
        )
        # the handling unit (20) and a co-handling unit (44) write without being added again
        for unit in (20, 44):
            await svc.add_progress_entry(
                s, case.id, unit_id=unit, month="2024-03", text="走访", account_id=7,
                at=at(2024, 3, 30),
            )  # fmt: skip
        with pytest.raises(ValidationError, match="not involved"):
            await svc.add_progress_entry(
                s, case.id, unit_id=45, month="2024-03", text="x", account_id=7, at=at(2024, 3, 30)
            )
        with pytest.raises(
            ValidationError, match="progress for 2024-05 cannot be written in 2024-04"
        ):
            await svc.add_progress_entry(
                s, case.id, unit_id=30, month="2024-05", text="x", account_id=7, at=at(2024, 4, 30)
            )
        with pytest.raises(ValidationError, match="state 'accepted', not 'concluded'"):
            await svc.close_backlog(s, case.id, account_id=99)
        await walk(
            s,
            calendar,
            item.id,
            [
                (E.ISSUE_OPINION, at(2024, 4, 1), {}),
                (E.CONCLUDE, at(2024, 4, 2), {"petitioner_waived": True}),
            ],
        )
        with pytest.raises(ValidationError, match="concluded but not resolved"):
            await svc.close_backlog(s, case.id, account_id=99)
        await svc.set_outcome(
            s,
            calendar,
            item.id,
            outcome=Outcome.SUPPORT,
            carried_out=True,
            resolved=True,
            account_id=6,
            at=at(2024, 4, 3),
        )
        assert (await svc.missing_months(s, case.id, through=dt.date(2024, 8, 1)))[30]
        closed = await svc.close_backlog(s, case.id, account_id=99, at=at(2024, 4, 5))
        assert (closed.closed_at, closed.closed_by) == (at(2024, 4, 5), 99)
        assert await svc.missing_months(s, case.id, through=dt.date(2029, 1, 1)) == {30: []}
        with pytest.raises(Conflict, match="already closed"):
            await svc.close_backlog(s, case.id, account_id=99)
        with pytest.raises(ValidationError, match="was closed"):
            await svc.add_progress_entry(
                s, case.id, unit_id=30, month="2024-04", text="x", account_id=7
            )


def test_review_window_runs_from_delivery_and_requests_are_dated_when_made(
    calendar: HolidayCalendar,
) -> None:
    issued = [
        HistoryEvent(at(2024, 3, 1), E.REGISTER),
        HistoryEvent(at(2024, 3, 4), E.ACCEPT),
        HistoryEvent(at(2024, 4, 1), E.ISSUE_OPINION),
    ]
    window = current_deadline(replay(issued, calendar), calendar)
    assert window is not None
    # no delivery recorded: from the opinion, 1 Apr + 30 = 1 May (Labour Day) -> Mon 6 May
    assert (window.what, window.due) == ("review_request", dt.date(2024, 5, 6))
    delivered = [
        *issued,
        HistoryEvent(at(2024, 4, 10), E.DELIVER, {"delivered_on": "2024-04-08"}),
    ]
    t = replay(delivered, calendar)
    window = current_deadline(t, calendar)
    assert window is not None
    assert (window.start, window.due) == (dt.date(2024, 4, 8), dt.date(2024, 5, 8))
    made = replay([*delivered, HistoryEvent(at(2024, 5, 8), E.REQUEST_REVIEW)], calendar)
    assert made.state is S.REVIEW_REQUESTED
    assert made.delivered_on is None  # the review opinion will have its own delivery
    with pytest.raises(ValidationError, match="the window ended on 2024-05-08"):
        then(delivered, HistoryEvent(at(2024, 5, 9), E.REQUEST_REVIEW), calendar)
    with pytest.raises(ValidationError, match="before the opinion was delivered on 2024-04-08"):
        then(delivered, HistoryEvent(at(2024, 4, 7), E.REQUEST_REVIEW), calendar)
    for when, on, message in (
        (at(2024, 4, 10), "2024-03-30", "between the opinion of 2024-04-01"),
        (at(2024, 4, 10), "2024-04-11", "the day it is recorded, 2024-04-10"),
        (at(2024, 4, 10), "8 April", "needs an ISO 'delivered_on'"),
    ):
        with pytest.raises(ValidationError, match=message):
            then(issued, HistoryEvent(when, E.DELIVER, {"delivered_on": on}), calendar)
    with pytest.raises(ValidationError, match="already delivered on 2024-04-08"):
        then(
            delivered,
            HistoryEvent(at(2024, 4, 11), E.DELIVER, {"delivered_on": "2024-04-09"}),
            calendar,
        )


async def test_review_by_the_organ_one_level_up_is_recorded_and_owed_by_it(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    review = {"reviewing_unit_id": 2}
    history = [
        HistoryEvent(at(2024, 3, 1), E.REGISTER),
        HistoryEvent(at(2024, 3, 4), E.ACCEPT),
        HistoryEvent(at(2024, 4, 1), E.ISSUE_OPINION),
        HistoryEvent(at(2024, 4, 20), E.REQUEST_REVIEW, review),
    ]
    assert replay(history, calendar).reviewing_unit_id == 2
    with pytest.raises(
        ValidationError, match=r"review is by unit 2, .* \(Art. 35\); unit 1 cannot"
    ):
        then(
            history,
            HistoryEvent(at(2024, 5, 10), E.ISSUE_REVIEW_OPINION, {"by_unit_id": 1}),
            calendar,
        )
    done = replay(
        [*history, HistoryEvent(at(2024, 5, 10), E.ISSUE_REVIEW_OPINION, {"by_unit_id": 2})],
        calendar,
    )
    assert done.state is S.REVIEW_OPINION
    async with sessions() as s:
        item = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        await svc.accept(s, calendar, item.id, account_id=5, at=at(2024, 3, 4))
        await walk(s, calendar, item.id, [(E.ISSUE_OPINION, at(2024, 4, 1), {})])
        await walk(s, calendar, item.id, [(E.REQUEST_REVIEW, at(2024, 4, 20), review)])
        assert await svc.reviewing_unit(s, item.id) == 2
        # the review opinion is on the reviewing organ's due list, not the handling unit's
        assert [
            d.item_id
            for d in await svc.list_due(s, [2], within_days=60, today=dt.date(2024, 4, 21))
        ] == [item.id]
        assert await svc.list_due(s, [1], within_days=60, today=dt.date(2024, 4, 21)) == []


async def test_transfer_to_an_organ_outside_the_district_stays_on_record(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    from records.item_models import ExternalOrganKind  # noqa: PLC0415

    async with sessions() as s:
        item = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        with pytest.raises(ValidationError, match="names the receiving organ"):
            await svc.transfer_out(
                s,
                calendar,
                item.id,
                organ=" ",
                organ_kind=ExternalOrganKind.COURT,
                account_id=5,
            )
        out = await svc.transfer_out(
            s,
            calendar,
            item.id,
            organ="市住房和城乡建设局",
            organ_kind=ExternalOrganKind.CITY_DEPARTMENT,
            account_id=5,
            at=at(2024, 3, 3),
            reason="属市级事权",
        )
        await s.commit()
        assert (out.state, out.due_on, out.registering_unit_id) == (S.TRANSFERRED_OUT, None, 1)
        history = await svc.item_history(s, item.id)
        assert history[-1].type is E.TRANSFER_OUT
        assert history[-1].data == {
            "organ": "市住房和城乡建设局",
            "organ_kind": "city_department",
            "from_unit_id": 1,
        }
        assert allowed_events(S.TRANSFERRED_OUT) == (E.NOTE,)  # terminal for the district
        with pytest.raises(InvalidTransition, match="state 'transferred_out'"):
            await svc.transfer(s, calendar, item.id, 20, account_id=5)
        # still in the district's records: lists and lookups find it
        assert (await svc.get_item(s, item.id)).state is S.TRANSFERRED_OUT
