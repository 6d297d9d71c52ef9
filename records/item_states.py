"""The states, events and transition table of a petition item, and what its history says.

Pure data and lookups: :data:`TRANSITIONS` is the table, :func:`next_state` reads it,
:class:`HistoryEvent` is one entry of the append-only history and :class:`Timeline` what the
history folds into (:mod:`records.lifecycle`). The periods running in each state are in
:mod:`records.item_periods`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from config.errors import InvalidTransition
from records.deadlines import ClockStop, Extension

__all__ = [
    "ANNOTATION_STATES",
    "RULES_2022_EFFECTIVE",
    "STATE_LABELS_ZH",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "EventType",
    "HistoryEvent",
    "ItemState",
    "RuleSet",
    "Timeline",
    "allowed_events",
    "next_state",
    "rule_set_for",
]


class ItemState(StrEnum):
    """Where a petition item stands."""

    REGISTERED = "registered"
    TRANSFERRED = "transferred"
    ASSIGNED = "assigned"
    DIVERTED = "diverted"
    NOT_ACCEPTED = "not_accepted"
    RECEIVED = "received"
    RETURNED = "returned"
    ACCEPTED = "accepted"
    OPINION_ISSUED = "opinion_issued"
    REVIEW_REQUESTED = "review_requested"
    REVIEW_OPINION = "review_opinion"
    REREVIEW_REQUESTED = "rereview_requested"
    REREVIEW_OPINION = "rereview_opinion"
    CONCLUDED = "concluded"
    #: sent to an organ outside the district's tree; off the district's hands, on record
    TRANSFERRED_OUT = "transferred_out"
    #: 部分办结: part of the requests answered in writing, the rest still within the
    #: handling period (the opinion on the rest follows)
    PART_CONCLUDED = "part_concluded"
    #: 已上报待确认: an assigned item's completion reported to the assigning body, which
    #: has not confirmed it yet
    REPORTED = "reported"


#: what a petitioner sees for each state (receipts, progress page)
STATE_LABELS_ZH: Mapping[ItemState, str] = MappingProxyType(
    {
        ItemState.REGISTERED: "已登记",
        ItemState.TRANSFERRED: "已转送",
        ItemState.ASSIGNED: "已交办",
        ItemState.DIVERTED: "已导入法定途径",
        ItemState.NOT_ACCEPTED: "不予受理",
        ItemState.RECEIVED: "已接收",
        ItemState.RETURNED: "已退回",
        ItemState.ACCEPTED: "已受理",
        ItemState.OPINION_ISSUED: "已出具处理意见",
        ItemState.REVIEW_REQUESTED: "复查中",
        ItemState.REVIEW_OPINION: "已出具复查意见",
        ItemState.REREVIEW_REQUESTED: "复核中",
        ItemState.REREVIEW_OPINION: "已出具复核意见",
        ItemState.CONCLUDED: "已办结",
        ItemState.TRANSFERRED_OUT: "已转送区外机关",
        ItemState.PART_CONCLUDED: "部分办结",
        ItemState.REPORTED: "已上报待确认",
    }
)


class RuleSet(StrEnum):
    """Which regulations govern an item (stored per item)."""

    #: 信访工作条例, in force 2022-05-01
    R2022 = "2022"
    #: 信访条例 (State Council, 2005), for items registered before 2022-05-01
    R2005 = "2005"


#: the 2022 Regulations took effect on this day
RULES_2022_EFFECTIVE = dt.date(2022, 5, 1)


def rule_set_for(registered_on: dt.date) -> RuleSet:
    """The rule set of an item registered on ``registered_on``."""
    return RuleSet.R2022 if registered_on >= RULES_2022_EFFECTIVE else RuleSet.R2005


class EventType(StrEnum):
    """Something that happens to an item; every one is appended to its history."""

    REGISTER = "register"
    TRANSFER = "transfer"
    #: to an organ outside the district's tree (city department, court, discipline inspection)
    TRANSFER_OUT = "transfer_out"
    ASSIGN = "assign"
    DIVERT = "divert"
    NOT_ACCEPT = "not_accept"
    RECEIVE = "receive"
    RETURN = "return"
    ACCEPT = "accept"
    ISSUE_OPINION = "issue_opinion"
    REQUEST_REVIEW = "request_review"
    ISSUE_REVIEW_OPINION = "issue_review_opinion"
    REQUEST_REREVIEW = "request_rereview"
    ISSUE_REREVIEW_OPINION = "issue_rereview_opinion"
    CONCLUDE = "conclude"
    #: part of the requests answered (部分办结); the handling period keeps running
    CONCLUDE_PART = "conclude_part"
    #: the completion report of an assigned item, sent to the assigning body (上报)
    REPORT = "report"
    #: the assigning body confirms the reported completion (确认办结)
    CONFIRM = "confirm"
    #: the assigning body does not confirm it: the unit handles it further and reports again
    RETURN_REPORT = "return_report"
    # Annotations: recorded in the history, the state stays.
    EXTEND = "extend"
    STOP_CLOCK = "stop_clock"
    RESUME_CLOCK = "resume_clock"
    SET_OUTCOME = "set_outcome"
    EVALUATE = "evaluate"
    NOTE = "note"
    #: the written opinion reached the petitioner: the review window counts from then
    DELIVER = "deliver"


S = ItemState
E = EventType

#: (state, event) -> new state. Anything not listed is an invalid transition.
TRANSITIONS: Mapping[tuple[ItemState, EventType], ItemState] = MappingProxyType(
    {
        (S.REGISTERED, E.TRANSFER): S.TRANSFERRED,
        (S.REGISTERED, E.ASSIGN): S.ASSIGNED,
        (S.REGISTERED, E.DIVERT): S.DIVERTED,
        (S.REGISTERED, E.NOT_ACCEPT): S.NOT_ACCEPTED,
        # The registering unit is itself competent: it accepts directly instead of
        # transferring to itself (which inflated the transfer counts).
        (S.REGISTERED, E.ACCEPT): S.ACCEPTED,
        (S.RETURNED, E.TRANSFER): S.TRANSFERRED,
        (S.RETURNED, E.ASSIGN): S.ASSIGNED,
        (S.RETURNED, E.DIVERT): S.DIVERTED,
        (S.RETURNED, E.NOT_ACCEPT): S.NOT_ACCEPTED,
        (S.REGISTERED, E.TRANSFER_OUT): S.TRANSFERRED_OUT,
        (S.RETURNED, E.TRANSFER_OUT): S.TRANSFERRED_OUT,
        (S.TRANSFERRED, E.RECEIVE): S.RECEIVED,
        (S.ASSIGNED, E.RECEIVE): S.RECEIVED,
        (S.RECEIVED, E.RETURN): S.RETURNED,
        (S.RECEIVED, E.ACCEPT): S.ACCEPTED,
        # The handling unit itself refuses in writing or diverts to a legal procedure
        # (Art. 31) after the item was routed to it.
        (S.RECEIVED, E.NOT_ACCEPT): S.NOT_ACCEPTED,
        (S.RECEIVED, E.DIVERT): S.DIVERTED,
        (S.ACCEPTED, E.ISSUE_OPINION): S.OPINION_ISSUED,
        (S.OPINION_ISSUED, E.REQUEST_REVIEW): S.REVIEW_REQUESTED,
        (S.OPINION_ISSUED, E.CONCLUDE): S.CONCLUDED,
        (S.REVIEW_REQUESTED, E.ISSUE_REVIEW_OPINION): S.REVIEW_OPINION,
        (S.REVIEW_OPINION, E.REQUEST_REREVIEW): S.REREVIEW_REQUESTED,
        (S.REVIEW_OPINION, E.CONCLUDE): S.CONCLUDED,
        (S.REREVIEW_REQUESTED, E.ISSUE_REREVIEW_OPINION): S.REREVIEW_OPINION,
        (S.REREVIEW_OPINION, E.CONCLUDE): S.CONCLUDED,
        # 部分办结: the unit answers part of the requests within the 60 days (Art. 34) and
        # the rest later, within the same period; the opinion on the rest ends it.
        (S.ACCEPTED, E.CONCLUDE_PART): S.PART_CONCLUDED,
        (S.PART_CONCLUDED, E.ISSUE_OPINION): S.OPINION_ISSUED,
        # 已上报待确认: an assigned (交办) item reports its completion after the opinion;
        # the assigning body confirms (办结) or sends it back. The petitioner's review
        # window runs on meanwhile (Art. 35), so a review request ends the wait too.
        (S.OPINION_ISSUED, E.REPORT): S.REPORTED,
        (S.REPORTED, E.CONFIRM): S.CONCLUDED,
        (S.REPORTED, E.RETURN_REPORT): S.OPINION_ISSUED,
        (S.REPORTED, E.REQUEST_REVIEW): S.REVIEW_REQUESTED,
    }
)

_AFTER_ACCEPT = frozenset(
    {
        S.ACCEPTED,
        S.PART_CONCLUDED,
        S.OPINION_ISSUED,
        S.REPORTED,
        S.REVIEW_REQUESTED,
        S.REVIEW_OPINION,
        S.REREVIEW_REQUESTED,
        S.REREVIEW_OPINION,
        S.CONCLUDED,
    }
)

#: annotation event -> states in which it may be recorded
ANNOTATION_STATES: Mapping[EventType, frozenset[ItemState]] = MappingProxyType(
    {
        E.EXTEND: frozenset({S.ACCEPTED, S.PART_CONCLUDED}),
        E.STOP_CLOCK: frozenset({S.REREVIEW_REQUESTED}),
        E.RESUME_CLOCK: frozenset({S.REREVIEW_REQUESTED}),
        E.SET_OUTCOME: _AFTER_ACCEPT | {S.DIVERTED},
        E.EVALUATE: _AFTER_ACCEPT,
        E.NOTE: frozenset(ItemState),
        E.DELIVER: frozenset({S.OPINION_ISSUED, S.REPORTED, S.REVIEW_OPINION, S.REREVIEW_OPINION}),
    }
)

#: states with no way out
TERMINAL_STATES = frozenset(s for s in ItemState if not any(k[0] is s for k in TRANSITIONS))


def allowed_events(state: ItemState) -> tuple[EventType, ...]:
    """Events that may be applied in ``state`` (transitions first, then annotations)."""
    moves = [e for (s, e) in TRANSITIONS if s is state]
    notes = [e for e, states in ANNOTATION_STATES.items() if state in states]
    return tuple(moves + notes)


def next_state(state: ItemState, event: EventType) -> ItemState:
    """The state after ``event`` in ``state`` (the same state for an annotation).

    Raises:
        InvalidTransition: the event is not allowed in ``state``; the message names the
            state and the allowed events.
    """
    target = TRANSITIONS.get((state, event))
    if target is not None:
        return target
    if state in ANNOTATION_STATES.get(event, frozenset()):
        return state
    if event is E.REGISTER:
        raise InvalidTransition(f"item is already registered (state '{state}')")
    allowed = ", ".join(f"'{e}'" for e in allowed_events(state)) or "none"
    raise InvalidTransition(
        f"cannot '{event}' an item in state '{state}'; allowed in '{state}': {allowed}"
    )


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One entry of an item's append-only history, as the lifecycle sees it.

    Attributes:
        at: when it happened (aware).
        type: what happened.
        data: event details: ``days``/``approved_by``/``reason`` for ``extend``;
            ``due`` (ISO date) for ``assign``; ``reason`` for ``stop_clock``;
            ``delivered_on`` (ISO date) for ``deliver``; ``reviewing_unit_id`` for
            ``request_review``/``request_rereview``; ``by_unit_id`` (the issuing unit)
            for the review and re-review opinions;
            ``petitioner_waived`` (bool) for an early ``conclude`` or ``confirm``;
            ``from_above`` (bool) for the ``report`` of an item assigned from above the
            district (its origin level).
        account_id: who did it (``None`` for the petitioner or the system).
    """

    at: dt.datetime
    type: EventType
    data: Mapping[str, Any] = field(default_factory=dict)
    account_id: int | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    """What the history says about an item, folded event by event.

    Attributes:
        rule_set: the regulations applying to the item.
        state: the current state.
        since: the day of the last state change.
        registered_on: day of registration.
        received_on: day the handling unit received it (last receipt).
        accepted_on: day of acceptance.
        opinion_on: day the handling opinion was issued.
        delivered_on: day the current (review / re-review) opinion was delivered to the
            petitioner; ``None`` until recorded, and again after each state change.
        reviewing_unit_id: the organ one level up that reviews (Art. 35) or re-reviews
            (Art. 36), from the last request; ``None`` when not recorded.
        extensions: approved extensions of the handling period.
        stops: clock stops of the re-review period.
        assignment_due: deadline set by the assigning body for the completion report.
        accepted_on_time: acceptance within its period (``None`` until accepted).
        opinion_on_time: opinion within its (extended) period (``None`` until issued).
        assigned: the item was assigned (交办) by its last routing, so its completion is
            reported to the assigning body (``report``).
    """

    rule_set: RuleSet
    state: ItemState
    since: dt.date
    registered_on: dt.date
    received_on: dt.date | None = None
    accepted_on: dt.date | None = None
    opinion_on: dt.date | None = None
    delivered_on: dt.date | None = None
    reviewing_unit_id: int | None = None
    extensions: tuple[Extension, ...] = ()
    stops: tuple[ClockStop, ...] = ()
    assignment_due: dt.date | None = None
    accepted_on_time: bool | None = None
    opinion_on_time: bool | None = None
    assigned: bool = False
