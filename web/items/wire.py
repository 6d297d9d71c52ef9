"""Wire forms of items, history entries, due lists, progress and backlog cases."""

from __future__ import annotations

from typing import Any

from records import items
from records.calendar import HolidayCalendar
from records.item_periods import is_provisional
from records.keyring import mask_phone
from records.lifecycle import (
    STATE_LABELS_ZH,
)
from records.lookup import format_code
from web.items.actions import allowed_actions
from web.items.common import (
    iso,
)


def item_json(item: items.Item, calendar: HolidayCalendar, *, full: bool = True) -> dict[str, Any]:
    """The wire form of an item; lists (``full=False``) omit content, address and phone.

    ``due.provisional`` is true when the due date lies in a year whose official holiday notice
    is not loaded (computed by the national rules; it may move when the notice is imported).

    Identity numbers and phones are masked in every view; ``POST
    /api/items/{id}/petitioners/{position}/reveal`` shows one, audited.
    """
    out: dict[str, Any] = {
        "id": item.id,
        "lookup_code": format_code(item.lookup_code),
        "state": item.state.value,
        "state_label": STATE_LABELS_ZH[item.state],
        "type": item.type.value,
        "channel": item.channel.value,
        "category": item.category,
        "urgent": item.urgent,
        "major": item.major,
        "confidential": item.confidential,
        "anonymous": item.anonymous,
        "is_group": item.is_group,
        "registering_unit_id": item.registering_unit_id,
        "handling_unit_id": item.handling_unit_id,
        "registered_at": item.registered_at.isoformat(),
        "due": (
            {
                "on": item.due_on.isoformat(),
                "what": item.due_what,
                "article": item.due_article,
                "provisional": is_provisional(calendar, item.due_on, item.due_what),
            }
            if item.due_on is not None
            else None
        ),
        "petitioners": [
            {
                "position": position,
                "name": pt.name,
                "id_number": pt.id_number_masked,
                "address": pt.address if full else None,
                "phone": mask_phone(pt.phone) if full else None,
                "is_representative": pt.is_representative,
            }
            for position, pt in enumerate(item.petitioners)
        ],
    }
    if not full:
        out["request"] = item.request[:80]
        return out
    out.update(
        {
            "national_number": item.national_number,
            "rule_set": item.rule_set.value,
            "version": item.version,
            "place": item.place,
            "request": item.request,
            "facts": item.facts,
            "reasons": item.reasons,
            "online_platform": item.online_platform,
            "origin_level": item.origin_level.value if item.origin_level else None,
            "led_by_other_unit": item.led_by_other_unit,
            "repeat": item.repeat,
            "group_size": item.group_size,
            "agent_name": item.agent_name,
            "agent_authorisation": item.agent_authorisation,
            "subject_unit_id": item.subject_unit_id,
            "co_handling_unit_ids": list(item.co_handling_unit_ids),
            "handler_account_ids": list(item.handler_account_ids),
            "recused_account_ids": list(item.recused_account_ids),
            "session_id": item.session_id,
            "duplicate_of_id": item.duplicate_of_id,
            "reviews_item_id": item.reviews_item_id,
            "outcome": item.outcome.value if item.outcome else None,
            "carried_out": item.carried_out,
            "resolved": item.resolved,
            "accepted_on_time": item.accepted_on_time,
            "opinion_on_time": item.opinion_on_time,
            "concluded_at": iso(item.concluded_at),
            "evaluation": {
                "acceptance": item.eval_acceptance,
                "handling": item.eval_handling,
                # recorded by staff for a petitioner without a phone: the account that did
                "acceptance_recorded_by": item.eval_acceptance_by,
                "handling_recorded_by": item.eval_handling_by,
            },
            "allowed_actions": allowed_actions(item.state),
        }
    )
    return out


def history_json(e: items.ItemHistoryEntry) -> dict[str, Any]:
    """The wire form of one history entry."""
    return {
        "seq": e.seq,
        "at": e.at.isoformat(),
        "account_id": e.account_id,
        "type": e.type.value,
        "from_state": e.from_state.value if e.from_state else None,
        "to_state": e.to_state.value,
        "reason": e.reason,
        "data": dict(e.data),
    }


def due_json(d: items.DueItem, calendar: HolidayCalendar) -> dict[str, Any]:
    """The wire form of a due-list entry."""
    return {
        "item_id": d.item_id,
        "lookup_code": format_code(d.lookup_code),
        "state": d.state.value,
        "due_unit_id": d.due_unit_id,
        "handling_unit_id": d.handling_unit_id,
        "due_on": d.due_on.isoformat(),
        "due_what": d.due_what,
        "due_article": d.due_article,
        "due_provisional": is_provisional(calendar, d.due_on, d.due_what),
        "days_left": d.days_left,
        "confidential": d.confidential,
    }


def progress_json(pp: items.PublicProgress, calendar: HolidayCalendar) -> dict[str, Any]:
    """The public wire form of progress: states and dates, nothing personal."""
    provisional = pp.due_on is not None and is_provisional(calendar, pp.due_on, pp.due_what)
    return {
        "lookup_code": pp.lookup_code,
        "state": pp.state.value,
        "label": pp.label,
        "registered_on": pp.registered_on.isoformat(),
        "due_on": iso(pp.due_on),
        "due_provisional": provisional,
        "steps": [
            {"on": s.on.isoformat(), "state": s.state.value, "label": s.label} for s in pp.steps
        ],
        "can_evaluate_acceptance": pp.can_evaluate_acceptance,
        "can_evaluate_handling": pp.can_evaluate_handling,
    }


def case_json(c: items.BacklogCaseInfo) -> dict[str, Any]:
    """The wire form of a backlog case (the five ones)."""
    return {
        "id": c.id,
        "item_id": c.item_id,
        "leader_account_id": c.leader_account_id,
        "team": c.team,
        "resolution_plan": c.resolution_plan,
        "stability_plan": c.stability_plan,
        "ledger": c.ledger,
        "unit_ids": list(c.unit_ids),
        "flagged_at": c.flagged_at.isoformat(),
        "plan_due_on": iso(c.plan_due_on),
        "closed_at": c.closed_at.isoformat() if c.closed_at else None,
        "closed_by": c.closed_by,
    }


def entry_json(e: items.ProgressEntry) -> dict[str, Any]:
    """The wire form of a monthly progress entry."""
    return {
        "id": e.id,
        "case_id": e.case_id,
        "unit_id": e.unit_id,
        "month": f"{e.month:%Y-%m}",
        "text": e.text,
        "account_id": e.account_id,
        "written_at": e.written_at.isoformat(),
    }


def duplicate_json(c: items.DuplicateCandidate) -> dict[str, Any]:
    """The wire form of a possible duplicate found at registration."""
    return {
        "item_id": c.item_id,
        "lookup_code": format_code(c.lookup_code),
        "state": c.state.value,
        "registered_at": c.registered_at.isoformat(),
        "score": c.score,
        "reasons": list(c.reasons),
    }
