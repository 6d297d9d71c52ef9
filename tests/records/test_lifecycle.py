"""Lifecycle: every path walked on a real database, every illegal event refused unchanged."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.errors import Conflict, InvalidTransition, NotFound, ValidationError
from records import items as svc
from records.calendar import HolidayCalendar
from records.item_models import ItemType, Outcome
from records.lifecycle import (
    ANNOTATION_STATES,
    TRANSITIONS,
    EventType,
    HistoryEvent,
    ItemState,
    RuleSet,
    allowed_events,
    current_deadline,
    next_state,
    open_deadlines,
    replay,
)
from tests.records.lifecycle_support import KEYRING, E, S, at, new_item, walk

# ------------------------------------------------------------------ pure table


def test_every_state_not_in_the_table_refuses_with_state_and_allowed_named() -> None:
    for state, event in itertools.product(ItemState, EventType):
        allowed = (state, event) in TRANSITIONS or state in ANNOTATION_STATES.get(event, set())
        if allowed:
            next_state(state, event)
            continue
        with pytest.raises(InvalidTransition) as err:
            next_state(state, event)
        if event is not E.REGISTER:
            msg = str(err.value)
            assert f"state '{state}'" in msg
            for ok in allowed_events(state):
                assert f"'{ok}'" in msg


def test_replay_current_deadline_with_articles(calendar: HolidayCalendar) -> None:
    history = [
        HistoryEvent(at(2024, 1, 26), E.REGISTER),
        HistoryEvent(at(2024, 1, 29), E.ASSIGN, {"due": "2024-04-30"}),
        HistoryEvent(at(2024, 2, 1), E.RECEIVE),
    ]
    t = replay(history, calendar)
    assert t.rule_set is RuleSet.R2022
    found = open_deadlines(t, calendar)
    assert [d.what for d in found] == ["accept", "assignment_report", "object"]
    accept = current_deadline(t, calendar)
    assert accept is not None
    # 1 Feb + 15 = Fri 16 Feb, in the Spring Festival -> Sun 18 Feb (adjusted working day)
    assert accept.due == dt.date(2024, 2, 18)
    assert accept.article == "信访工作条例 (2022) Art. 23(3)"
    objection = found[-1]
    # Fri 2, Sun 4 (调休), Mon 5, Tue 6, Wed 7 Feb
    assert objection.due == dt.date(2024, 2, 7)
    assert "Art. 23" in objection.article
    old = replay([HistoryEvent(at(2022, 4, 20), E.REGISTER)], calendar)
    assert old.rule_set is RuleSet.R2005
    route = current_deadline(old, calendar)
    assert route is not None
    assert route.article == "信访条例 (2005) Art. 21"


# ------------------------------------------------------------------ on the database


PATHS: dict[str, tuple[list[tuple[EventType, dt.datetime, dict[str, object]]], ItemState]] = {
    "not accepted": ([(E.NOT_ACCEPT, at(2024, 3, 2), {})], S.NOT_ACCEPTED),
    "diverted": ([(E.DIVERT, at(2024, 3, 2), {})], S.DIVERTED),
    "transfer, object, assign, accept, opinion, no review": (
        [
            (E.TRANSFER, at(2024, 3, 2), {}),
            (E.RECEIVE, at(2024, 3, 4), {}),
            (E.RETURN, at(2024, 3, 8), {}),
            (E.ASSIGN, at(2024, 3, 11), {}),
            (E.RECEIVE, at(2024, 3, 12), {}),
            (E.ACCEPT, at(2024, 3, 20), {}),
            (E.EXTEND, at(2024, 4, 20), {"days": 30}),
            (E.ISSUE_OPINION, at(2024, 6, 1), {}),
            (E.CONCLUDE, at(2024, 7, 3), {}),
        ],
        S.CONCLUDED,
    ),
    "full review and re-review with hearing": (
        [
            (E.TRANSFER, at(2024, 3, 2), {}),
            (E.RECEIVE, at(2024, 3, 4), {}),
            (E.ACCEPT, at(2024, 3, 5), {}),
            (E.ISSUE_OPINION, at(2024, 4, 1), {}),
            (E.REQUEST_REVIEW, at(2024, 4, 20), {}),
            (E.ISSUE_REVIEW_OPINION, at(2024, 5, 10), {}),
            (E.REQUEST_REREVIEW, at(2024, 6, 1), {}),
            (E.STOP_CLOCK, at(2024, 6, 10), {}),
            (E.RESUME_CLOCK, at(2024, 6, 20), {}),
            (E.ISSUE_REREVIEW_OPINION, at(2024, 7, 9), {}),
            (E.CONCLUDE, at(2024, 7, 10), {}),
        ],
        S.CONCLUDED,
    ),
    "review opinion accepted, no re-review": (
        [
            (E.ASSIGN, at(2024, 3, 2), {}),
            (E.RECEIVE, at(2024, 3, 4), {}),
            (E.ACCEPT, at(2024, 3, 5), {}),
            (E.ISSUE_OPINION, at(2024, 4, 1), {}),
            (E.REQUEST_REVIEW, at(2024, 4, 20), {}),
            (E.ISSUE_REVIEW_OPINION, at(2024, 5, 10), {}),
            (E.CONCLUDE, at(2024, 5, 12), {"petitioner_waived": True}),
        ],
        S.CONCLUDED,
    ),
}


@pytest.mark.parametrize("path", list(PATHS))
async def test_every_path_and_history_is_append_only(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar, path: str
) -> None:
    steps, final = PATHS[path]
    async with sessions() as s:
        item = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        await s.commit()
        item = await walk(s, calendar, item.id, steps)
        assert item.state is final
        history = await svc.item_history(s, item.id)
    assert [h.type for h in history] == [E.REGISTER, *[e for e, _, _ in steps]]
    assert [h.seq for h in history] == list(range(1, len(history) + 1))
    for before, after in itertools.pairwise(history):
        assert after.from_state is before.to_state
    if final is S.CONCLUDED:
        assert item.concluded_at is not None
        assert item.due_on is None


async def test_rereview_deadline_excludes_hearing(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    steps = PATHS["full review and re-review with hearing"][0][:7]
    async with sessions() as s:
        item = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        item = await walk(s, calendar, item.id, steps)
        assert item.state is S.REREVIEW_REQUESTED
        assert item.due_on == dt.date(2024, 7, 1)  # 1 Jun + 30 = Mon 1 Jul
        item = await svc.stop_clock(
            s, calendar, item.id, reason="听证", account_id=6, at=at(2024, 6, 10)
        )
        assert item.due_on is None  # suspended while the hearing runs
        item = await svc.resume_clock(s, calendar, item.id, account_id=6, at=at(2024, 6, 20))
        # 10..19 June stopped: 10 days -> raw 11 Jul (Thu)
        assert item.due_on == dt.date(2024, 7, 11)
        assert "Art. 36" in (item.due_article or "")


async def test_illegal_transitions_refused_without_changing_anything(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with sessions() as s:
        item = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        await s.commit()
        for event in EventType:
            if (S.REGISTERED, event) in TRANSITIONS or event in (E.NOTE, E.REGISTER):
                continue
            with pytest.raises(InvalidTransition, match="state 'registered'.*'transfer', 'assign'"):
                await svc.apply_event(
                    s,
                    calendar,
                    item.id,
                    event,
                    account_id=5,
                    at=at(2024, 3, 2),
                    data={"days": 5, "approved_by": 1},
                )
        with pytest.raises(InvalidTransition):
            await svc.acknowledge(s, calendar, item.id, account_id=5, at=at(2024, 3, 2))
        await s.commit()
    async with sessions() as s:
        again = await svc.get_item(s, item.id)
        history = await svc.item_history(s, item.id)
    assert again.state is S.REGISTERED
    assert again.version == item.version
    assert len(history) == 1


async def test_domain_rules_refused(
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
            [(E.TRANSFER, at(2024, 3, 2), {}), (E.RECEIVE, at(2024, 3, 4), {})],
        )
        with pytest.raises(ValidationError, match="too late: it had to be raised by 2024-03-11"):
            await svc.object_to(s, calendar, item.id, reason="x", account_id=6, at=at(2024, 3, 12))
        await walk(
            s,
            calendar,
            item.id,
            [(E.ACCEPT, at(2024, 3, 5), {}), (E.EXTEND, at(2024, 3, 6), {"days": 20})],
        )
        # Art. 34: one extension; a second is refused even within 30 days in total
        with pytest.raises(ValidationError, match="already extended by 20 days on 2024-03-06"):
            await svc.extend(
                s, calendar, item.id, days=10, approved_by=9, reason="再延", at=at(2024, 3, 7)
            )
        item = await svc.get_item(s, item.id)
        assert item.due_on == dt.date(2024, 5, 24)  # 5 Mar + 80 = Fri 24 May
        await walk(s, calendar, item.id, [(E.ISSUE_OPINION, at(2024, 4, 1), {})])
        with pytest.raises(ValidationError, match="may still ask for a review until 2024-05-06"):
            await svc.apply_event(s, calendar, item.id, E.CONCLUDE, account_id=6, at=at(2024, 4, 2))
        with pytest.raises(ValidationError, match="too late"):
            await svc.apply_event(
                s, calendar, item.id, E.REQUEST_REVIEW, account_id=None, at=at(2024, 5, 7)
            )
        with pytest.raises(Conflict, match="version"):
            await svc.apply_event(s, calendar, item.id, E.NOTE, account_id=6, expected_version=1)
    with pytest.raises(ValidationError, match="at most 5 representatives"):
        svc._validate_new(
            new_item(
                is_group=True,
                group_size=40,
                petitioners=[
                    svc.NewPetitioner(name=f"代表{i}", is_representative=True) for i in range(6)
                ],
            )
        )


async def test_lookup_progress_and_evaluation(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with sessions() as s:
        item = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        typed = item.lookup_code.lower()[:5] + " - " + item.lookup_code.lower()[5:]
        progress = await svc.public_progress(s, typed)
        assert progress.label == "已登记"
        assert "张三" not in repr(progress)
        assert "供暖" not in repr(progress)
        with pytest.raises(ValidationError, match="accept"):
            await svc.evaluate(
                s, calendar, item.lookup_code, "1234", stage="acceptance", satisfied=True
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
        with pytest.raises(NotFound):
            await svc.evaluate(
                s, calendar, item.lookup_code, "9999", stage="acceptance", satisfied=True
            )
        progress = await svc.evaluate(
            s, calendar, item.lookup_code, "1234", stage="acceptance", satisfied=True
        )
        assert not progress.can_evaluate_acceptance
        assert [st.state for st in progress.steps] == [
            S.REGISTERED,
            S.TRANSFERRED,
            S.RECEIVED,
            S.ACCEPTED,
        ]
        with pytest.raises(Conflict, match="already rated"):
            await svc.evaluate(
                s, calendar, item.lookup_code, "1234", stage="acceptance", satisfied=False
            )
        await s.commit()


async def test_due_overdue_duplicates_and_backlog(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with sessions() as s:
        a = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        b = await svc.register_item(
            s,
            calendar,
            new_item(request="要求解决小区供暖温度不达标问题"),
            keyring=KEYRING,
            account_id=5,
            at=at(2024, 3, 20),
        )
        await walk(
            s, calendar, a.id, [(E.TRANSFER, at(2024, 3, 2), {}), (E.RECEIVE, at(2024, 3, 4), {})]
        )
        await s.commit()
        due = await svc.list_due(s, [20], within_days=30, today=dt.date(2024, 3, 10))
        assert [(d.item_id, d.due_on, d.due_what) for d in due] == [
            (a.id, dt.date(2024, 3, 19), "accept")
        ]
        assert await svc.list_due(s, [1], within_days=30, today=dt.date(2024, 3, 21)) == [
            svc.DueItem(
                b.id,
                b.lookup_code,
                S.REGISTERED,
                1,
                None,
                dt.date(2024, 4, 7),
                "route",
                "信访工作条例 (2022) Art. 22",
                17,
                False,
            )
        ]
        overdue = await svc.list_overdue(s, [20], today=dt.date(2024, 3, 20))
        assert [(d.item_id, d.days_left) for d in overdue] == [(a.id, -1)]
        dups = await svc.find_possible_duplicates(
            s, keyring=KEYRING, id_number="110101195001011234", request_text="小区供暖不热"
        )
        assert {d.item_id for d in dups} == {a.id, b.id}
        assert "same identity number" in dups[0].reasons
        text_only = await svc.find_possible_duplicates(
            s, request_text="要求解决小区供暖不热的问题", since=at(2024, 1, 1)
        )
        assert text_only[0].item_id == a.id
        case = await svc.flag_backlog(
            s,
            a.id,
            leader_account_id=99,
            team="专班",
            resolution_plan="方案",
            stability_plan="稳控",
            ledger="台账",
            unit_ids=[20, 30],
            account_id=5,
            at=at(2024, 3, 5),
        )
        await svc.add_progress_entry(
            s, case.id, unit_id=20, month="2024-03", text="走访", account_id=7
        )
        await svc.add_progress_entry(
            s, case.id, unit_id=20, month=dt.date(2024, 5, 9), text="协调", account_id=7
        )
        with pytest.raises(Conflict):
            await svc.add_progress_entry(
                s, case.id, unit_id=20, month="2024-03", text="again", account_id=7
            )
        await s.commit()
    async with sessions() as s:
        missing = await svc.missing_months(s, case.id, through=dt.date(2024, 6, 15))
        assert missing == {20: ["2024-04"], 30: ["2024-03", "2024-04", "2024-05"]}
        with pytest.raises(ValidationError, match="not involved"):
            await svc.add_progress_entry(
                s, case.id, unit_id=31, month="2024-03", text="x", account_id=7
            )


async def test_accusation_is_confidential_and_handlers_exposed(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with sessions() as s:
        item = await svc.register_item(
            s,
            calendar,
            new_item(type=ItemType.ACCUSATION),
            keyring=KEYRING,
            account_id=5,
            at=at(2024, 3, 1),
        )
        assert item.confidential
        await svc.set_handler(s, item.id, 6)
        item = await svc.set_handler(s, item.id, 8, recused=True, reason="亲属")
        item = await svc.add_co_handler(s, item.id, 44)
        assert (item.handler_account_ids, item.recused_account_ids, item.co_handling_unit_ids) == (
            (6,),
            (8,),
            (44,),
        )
        await walk(s, calendar, item.id, [(E.DIVERT, at(2024, 3, 2), {})])
        item = await svc.set_outcome(
            s,
            calendar,
            item.id,
            outcome=Outcome.DIVERTED,
            carried_out=None,
            resolved=False,
            account_id=6,
        )
        assert item.outcome is Outcome.DIVERTED
