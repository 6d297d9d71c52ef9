"""The table of lifecycle action routes (``POST /api/items/{item_id}/<name>``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated

from records.item_models import ExternalOrganKind, Outcome
from records.lifecycle import (
    EventType,
    ItemState,
    allowed_events,
)
from web.items.common import (
    MAX_ID,
    MAX_TEXT,
)
from web.rest import Bool, Choice, Int, Request, Text


class Reason(Request):
    """An optional reason."""

    reason: Annotated[str, Text(2000, min_len=0)] = ""


class NeedReason(Request):
    """A reason is required."""

    reason: Annotated[str, Text(2000)]


class NoBody(Request):
    """Nothing (a body, if sent, is ignored)."""


class TransferBody(Reason):
    """``transfer``: to the unit with authority."""

    to_unit_id: Annotated[int, Int(1, MAX_ID)]
    handler_account_id: Annotated[int, Int(1, MAX_ID)] | None = None


class AssignBody(TransferBody):
    """``assign``: with a report deadline."""

    due: dt.date | None = None


class TransferOutBody(Reason):
    """``transfer-out``: to an organ outside the district."""

    organ: Annotated[str, Text(200)]
    organ_kind: Annotated[str, Choice(tuple(ExternalOrganKind))]


class ExtendBody(NeedReason):
    """``extend``: at most 30 days, approved by a leader (Art. 34)."""

    days: Annotated[int, Int(1, 30)]
    approved_by: Annotated[int, Int(1, MAX_ID)]


class OpinionBody(Reason):
    """An opinion (handling, review, re-review) and its legal basis."""

    decision: Annotated[str, Text(MAX_TEXT)]
    legal_basis: Annotated[str, Text(2000)]


class DeliverBody(Request):
    """``deliver``: the day the written opinion reached the petitioner."""

    delivered_on: dt.date


class RequestBody(Reason):
    """A review or re-review request, dated the day it was made."""

    at: dt.date | None = None


class ConcludeBody(Reason):
    """``conclude``."""

    petitioner_waived: Bool = None


class PartConcludeBody(Reason):
    """``part-conclude``: the written answer to part of the requests."""

    decision: Annotated[str, Text(MAX_TEXT)]


class ReportBody(Request):
    """``report``: the completion reported to the assigning body."""

    report: Annotated[str, Text(MAX_TEXT)]


class OutcomeBody(Reason):
    """``outcome`` (Arts. 31-33)."""

    outcome: Annotated[str, Choice(tuple(Outcome))]
    carried_out: bool | None = None
    resolved: bool


@dataclasses.dataclass(frozen=True, slots=True)
class ActionSpec:
    """One lifecycle action route: ``POST /api/items/{item_id}/<name>``.

    Attributes:
        name: path segment.
        event: the lifecycle event it appends.
        summary: one line for the OpenAPI document.
        body: the request body's model (every action's body may be left out when it has no
            required field).
    """

    name: str
    event: EventType
    summary: str
    body: type[Request] = NoBody


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("transfer", EventType.TRANSFER, "Transfer (转送) to the unit with authority",
               TransferBody),
    ActionSpec("assign", EventType.ASSIGN, "Assign (交办) with a report deadline", AssignBody),
    ActionSpec("transfer-out", EventType.TRANSFER_OUT, "Transfer to an organ outside the "
               "district (city department, court, procuratorate, discipline inspection)",
               TransferOutBody),
    ActionSpec("divert", EventType.DIVERT, "Divert to a legal procedure (Art. 31)", NeedReason),
    ActionSpec("not-accept", EventType.NOT_ACCEPT, "Refuse in writing (不予受理)", NeedReason),
    ActionSpec("acknowledge", EventType.RECEIVE, "The receiving unit acknowledges receipt"),
    ActionSpec("object", EventType.RETURN, "Object within 5 working days (Art. 23)", NeedReason),
    ActionSpec("accept", EventType.ACCEPT, "Accept (受理), by the competent unit itself; "
               "directly when it registered the item; the handling period starts", Reason),
    ActionSpec("extend", EventType.EXTEND, "Extend the handling period (≤30 d, Art. 34)",
               ExtendBody),
    ActionSpec("opinion", EventType.ISSUE_OPINION, "Issue the handling opinion", OpinionBody),
    ActionSpec("deliver", EventType.DELIVER, "Record the day the written opinion reached the "
               "petitioner; the review window counts from it", DeliverBody),
    ActionSpec("review-request", EventType.REQUEST_REVIEW, "Record the petitioner's review "
               "request (≤30 d from delivery), dated the day it was made", RequestBody),
    ActionSpec("review-opinion", EventType.ISSUE_REVIEW_OPINION, "Issue the review opinion",
               OpinionBody),
    ActionSpec("rereview-request", EventType.REQUEST_REREVIEW, "Record the petitioner's "
               "re-review request (≤30 d from delivery), dated the day it was made",
               RequestBody),
    ActionSpec("rereview-opinion", EventType.ISSUE_REREVIEW_OPINION,
               "Issue the re-review opinion", OpinionBody),
    ActionSpec("conclude", EventType.CONCLUDE, "Conclude (办结)", ConcludeBody),
    ActionSpec("part-conclude", EventType.CONCLUDE_PART, "Answer part of the requests in "
               "writing (部分办结); the handling period runs on from the acceptance",
               PartConcludeBody),
    ActionSpec("report", EventType.REPORT, "Report an assigned item's completion to the "
               "assigning body (已上报待确认)", ReportBody),
    ActionSpec("confirm", EventType.CONFIRM, "The assigning body confirms the reported "
               "completion (办结)", ConcludeBody),
    ActionSpec("return-report", EventType.RETURN_REPORT, "The assigning body does not confirm "
               "the report: the unit handles the item further", NeedReason),
    ActionSpec("clock-stop", EventType.STOP_CLOCK, "Stop the re-review clock (hearing, Art. 36)",
               NeedReason),
    ActionSpec("clock-resume", EventType.RESUME_CLOCK, "Restart the re-review clock"),
    ActionSpec("outcome", EventType.SET_OUTCOME, "Record the outcome (Arts. 31-33)", OutcomeBody),
    ActionSpec("note", EventType.NOTE, "Add a note to the history", NeedReason),
)  # fmt: skip
ACTION_BY_EVENT = {a.event: a.name for a in ACTIONS}


def allowed_actions(state: ItemState) -> list[str]:
    """The action routes that may be used in ``state`` (evaluation is the petitioner's)."""
    return [ACTION_BY_EVENT[e] for e in allowed_events(state) if e in ACTION_BY_EVENT]
