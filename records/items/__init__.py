"""Petition item services: register, route, handle, evaluate, list what is due, backlog cases.

Every function takes an :class:`~sqlalchemy.ext.asyncio.AsyncSession` and returns frozen
dataclasses, never ORM rows. Functions flush but do not commit: the caller owns the
transaction. A :class:`Conflict` raised by a failed flush (a concurrent writer) has rolled the
session back; expected conflicts (already rated, entry exists) are checked before writing and
leave the transaction intact. State changes go through :mod:`records.lifecycle` against the
replayed history and are appended to ``item_events``; nothing in the history is ever updated.

Scope and permissions are the policy module's job; each :class:`Item` carries
``registering_unit_id``, ``handling_unit_id``, ``confidential``, ``handler_account_ids`` and
``recused_account_ids`` for it.

The package is split by concern: :mod:`~records.items.values` (what the functions take and
return), :mod:`~records.items.core` (the one path of a change: row → append → flush →
convert), :mod:`~records.items.registration`, :mod:`~records.items.handling` (lifecycle
events), :mod:`~records.items.public` (the petitioner's side), :mod:`~records.items.due`,
:mod:`~records.items.duplicates`, :mod:`~records.items.backlog`,
:mod:`~records.items.listings` and :mod:`~records.items.attachments`. Callers use the names
re-exported here (``from records import items``; ``items.register_item(...)``).
"""

from records.items.attachments import (
    ATTACHMENT_TYPES,
    MAX_ATTACHMENT_BYTES,
    AttachmentTooLarge,
    AttachmentTypeRefused,
    add_attachment,
    attachment_name,
    discard_attachment_file,
    get_attachment,
    list_attachments,
    store_attachment_file,
)
from records.items.backlog import (
    add_progress_entry,
    backlog_attention,
    backlog_case_of_item,
    close_backlog,
    flag_backlog,
    get_backlog_case,
    list_backlog_cases,
    missing_months,
    progress_entries,
    set_plan_due,
)
from records.items.completion import (
    assigning_unit,
    conclude_part,
    confirm_completion,
    report_completion,
    return_report,
)
from records.items.due import list_due, list_overdue
from records.items.duplicates import find_possible_duplicates
from records.items.handling import (
    accept,
    acknowledge,
    add_co_handler,
    apply_event,
    assign,
    deliver,
    extend,
    object_to,
    resume_clock,
    reviewing_unit,
    set_handler,
    set_outcome,
    stop_clock,
    transfer,
    transfer_out,
)
from records.items.listings import MAX_ROWS, SORTS, item_session_ids, list_items, list_officials
from records.items.privacy import (
    RevealField,
    Rotation,
    check_keyring,
    data_key_ids_in_use,
    reveal_petitioner,
    rotate_data_key,
)
from records.items.public import evaluate, public_progress, record_evaluation
from records.items.registration import _validate_new as _validate_new  # tests check the rules
from records.items.registration import (
    get_item,
    get_item_by_lookup_code,
    item_history,
    register_item,
)
from records.items.values import (
    AttachmentInfo,
    BacklogAttention,
    BacklogCaseInfo,
    DueItem,
    DuplicateCandidate,
    Item,
    ItemHistoryEntry,
    NewItem,
    NewPetitioner,
    PetitionerInfo,
    ProgressEntry,
    PublicProgress,
    StoredFile,
)
from records.items.visits import (
    LEADER_KINDS,
    KindFigures,
    NewVisit,
    SupervisionInfo,
    VisitFigures,
    VisitInfo,
    list_supervisions,
    list_visits,
    record_visit,
    supervise,
    supervision_count,
    visit_figures,
)

__all__ = [
    "MAX_ROWS",
    "SORTS",
    "ATTACHMENT_TYPES",
    "LEADER_KINDS",
    "MAX_ATTACHMENT_BYTES",
    "AttachmentInfo",
    "AttachmentTooLarge",
    "AttachmentTypeRefused",
    "BacklogAttention",
    "BacklogCaseInfo",
    "DueItem",
    "DuplicateCandidate",
    "Item",
    "ItemHistoryEntry",
    "KindFigures",
    "NewItem",
    "NewPetitioner",
    "NewVisit",
    "PetitionerInfo",
    "ProgressEntry",
    "PublicProgress",
    "RevealField",
    "Rotation",
    "StoredFile",
    "SupervisionInfo",
    "VisitFigures",
    "VisitInfo",
    "accept",
    "acknowledge",
    "add_attachment",
    "add_co_handler",
    "add_progress_entry",
    "apply_event",
    "assign",
    "assigning_unit",
    "attachment_name",
    "backlog_attention",
    "backlog_case_of_item",
    "check_keyring",
    "close_backlog",
    "conclude_part",
    "confirm_completion",
    "data_key_ids_in_use",
    "deliver",
    "discard_attachment_file",
    "evaluate",
    "extend",
    "find_possible_duplicates",
    "flag_backlog",
    "get_attachment",
    "get_backlog_case",
    "get_item",
    "get_item_by_lookup_code",
    "item_history",
    "item_session_ids",
    "list_attachments",
    "list_backlog_cases",
    "list_due",
    "list_items",
    "list_officials",
    "list_overdue",
    "list_supervisions",
    "list_visits",
    "missing_months",
    "object_to",
    "progress_entries",
    "public_progress",
    "record_evaluation",
    "record_visit",
    "register_item",
    "report_completion",
    "resume_clock",
    "return_report",
    "reveal_petitioner",
    "reviewing_unit",
    "rotate_data_key",
    "set_handler",
    "set_outcome",
    "set_plan_due",
    "stop_clock",
    "store_attachment_file",
    "supervise",
    "supervision_count",
    "transfer",
    "transfer_out",
    "visit_figures",
]
