"""The table of lifecycle action routes (``POST /api/items/{item_id}/<name>``)."""

from __future__ import annotations

import dataclasses
from typing import Any

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


@dataclasses.dataclass(frozen=True, slots=True)
class ActionSpec:
    """One lifecycle action route: ``POST /api/items/{item_id}/<name>``.

    Attributes:
        name: path segment.
        event: the lifecycle event it appends.
        summary: one line for the OpenAPI document.
        fields: body fields: name → JSON schema.
        required: required body fields.
    """

    name: str
    event: EventType
    summary: str
    fields: dict[str, dict[str, Any]]
    required: tuple[str, ...] = ()


_REASON = {"type": "string", "maxLength": 2000}
NEED_REASON = {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": r"\S"}
_UNIT = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_DECISION = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": r"\S"}
_DAY = {"type": "string", "format": "date"}
_BASIS = {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": r"\S"}

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("transfer", EventType.TRANSFER, "Transfer (转送) to the unit with authority",
               {"to_unit_id": _UNIT, "handler_account_id": _UNIT, "reason": _REASON},
               ("to_unit_id",)),
    ActionSpec("assign", EventType.ASSIGN, "Assign (交办) with a report deadline",
               {"to_unit_id": _UNIT, "due": {"type": "string", "format": "date"},
                "handler_account_id": _UNIT, "reason": _REASON}, ("to_unit_id",)),
    ActionSpec("transfer-out", EventType.TRANSFER_OUT, "Transfer to an organ outside the "
               "district (city department, court, procuratorate, discipline inspection)",
               {"organ": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"},
                "organ_kind": {"type": "string", "enum": [k.value for k in ExternalOrganKind]},
                "reason": _REASON}, ("organ", "organ_kind")),
    ActionSpec("divert", EventType.DIVERT, "Divert to a legal procedure (Art. 31)",
               {"reason": NEED_REASON}, ("reason",)),
    ActionSpec("not-accept", EventType.NOT_ACCEPT, "Refuse in writing (不予受理)",
               {"reason": NEED_REASON}, ("reason",)),
    ActionSpec("acknowledge", EventType.RECEIVE, "The receiving unit acknowledges receipt", {}),
    ActionSpec("object", EventType.RETURN, "Object within 5 working days (Art. 23)",
               {"reason": NEED_REASON}, ("reason",)),
    ActionSpec("accept", EventType.ACCEPT, "Accept (受理), by the competent unit itself; "
               "directly when it registered the item; the handling period starts",
               {"reason": _REASON}),
    ActionSpec("extend", EventType.EXTEND, "Extend the handling period (≤30 d, Art. 34)",
               {"days": {"type": "integer", "minimum": 1, "maximum": 30},
                "approved_by": _UNIT, "reason": NEED_REASON},
               ("days", "approved_by", "reason")),
    ActionSpec("opinion", EventType.ISSUE_OPINION, "Issue the handling opinion",
               {"decision": _DECISION, "legal_basis": _BASIS, "reason": _REASON},
               ("decision", "legal_basis")),
    ActionSpec("deliver", EventType.DELIVER, "Record the day the written opinion reached the "
               "petitioner; the review window counts from it",
               {"delivered_on": _DAY}, ("delivered_on",)),
    ActionSpec("review-request", EventType.REQUEST_REVIEW, "Record the petitioner's review "
               "request (≤30 d from delivery), dated the day it was made",
               {"at": _DAY, "reason": _REASON}),
    ActionSpec("review-opinion", EventType.ISSUE_REVIEW_OPINION, "Issue the review opinion",
               {"decision": _DECISION, "legal_basis": _BASIS, "reason": _REASON},
               ("decision", "legal_basis")),
    ActionSpec("rereview-request", EventType.REQUEST_REREVIEW, "Record the petitioner's "
               "re-review request (≤30 d from delivery), dated the day it was made",
               {"at": _DAY, "reason": _REASON}),
    ActionSpec("rereview-opinion", EventType.ISSUE_REREVIEW_OPINION, "Issue the re-review opinion",
               {"decision": _DECISION, "legal_basis": _BASIS, "reason": _REASON},
               ("decision", "legal_basis")),
    ActionSpec("conclude", EventType.CONCLUDE, "Conclude (办结)",
               {"petitioner_waived": {"type": "boolean"}, "reason": _REASON}),
    ActionSpec("part-conclude", EventType.CONCLUDE_PART, "Answer part of the requests in "
               "writing (部分办结); the handling period runs on from the acceptance",
               {"decision": _DECISION, "reason": _REASON}, ("decision",)),
    ActionSpec("report", EventType.REPORT, "Report an assigned item's completion to the "
               "assigning body (已上报待确认)", {"report": _DECISION}, ("report",)),
    ActionSpec("confirm", EventType.CONFIRM, "The assigning body confirms the reported "
               "completion (办结)", {"petitioner_waived": {"type": "boolean"}, "reason": _REASON}),
    ActionSpec("return-report", EventType.RETURN_REPORT, "The assigning body does not confirm "
               "the report: the unit handles the item further", {"reason": NEED_REASON},
               ("reason",)),
    ActionSpec("clock-stop", EventType.STOP_CLOCK, "Stop the re-review clock (hearing, Art. 36)",
               {"reason": NEED_REASON}, ("reason",)),
    ActionSpec("clock-resume", EventType.RESUME_CLOCK, "Restart the re-review clock", {}),
    ActionSpec("outcome", EventType.SET_OUTCOME, "Record the outcome (Arts. 31-33)",
               {"outcome": {"type": "string", "enum": [o.value for o in Outcome]},
                "carried_out": {"type": ["boolean", "null"]}, "resolved": {"type": "boolean"},
                "reason": _REASON}, ("outcome", "resolved")),
    ActionSpec("note", EventType.NOTE, "Add a note to the history",
               {"reason": NEED_REASON}, ("reason",)),
)  # fmt: skip
ACTION_BY_EVENT = {a.event: a.name for a in ACTIONS}


def allowed_actions(state: ItemState) -> list[str]:
    """The action routes that may be used in ``state`` (evaluation is the petitioner's)."""
    return [ACTION_BY_EVENT[e] for e in allowed_events(state) if e in ACTION_BY_EVENT]
