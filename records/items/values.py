"""Value objects of petition items: what the functions of this package take and return."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from records.item_models import (
    Channel,
    ItemType,
    OriginLevel,
    Outcome,
)
from records.lifecycle import (
    EventType,
    ItemState,
    RuleSet,
)
from records.policy import ItemTarget


@dataclass(frozen=True, slots=True)
class NewPetitioner:
    """A petitioner as entered at registration."""

    name: str
    id_number: str | None = None
    address: str | None = None
    phone: str | None = None
    is_representative: bool = False


@dataclass(frozen=True, slots=True)
class NewItem:
    """What is needed to register an item.

    ``confidential`` defaults to true for accusations (Art. 30). ``rule_set`` defaults from
    the registration day (2022 Regulations from 2022-05-01).
    """

    registering_unit_id: int
    type: ItemType
    channel: Channel
    request: str
    facts: str = ""
    reasons: str = ""
    category: str | None = None
    place: str | None = None
    online_platform: str | None = None
    origin_level: OriginLevel | None = None
    led_by_other_unit: bool = False
    #: a repeat petition (重复信访); implied by ``duplicate_of_id``
    repeat: bool = False
    urgent: bool = False
    major: bool = False
    confidential: bool | None = None
    anonymous: bool = False
    is_group: bool = False
    group_size: int | None = None
    petitioners: Sequence[NewPetitioner] = ()
    agent_name: str | None = None
    agent_authorisation: str | None = None
    agent_account_id: int | None = None
    subject_unit_id: int | None = None
    national_number: str | None = None
    session_id: str | None = None
    duplicate_of_id: str | None = None
    reviews_item_id: str | None = None
    rule_set: RuleSet | None = None


@dataclass(frozen=True, slots=True)
class PetitionerInfo:
    """A stored petitioner.

    The identity number is sealed at rest and only its masked form leaves the records
    layer; :func:`records.items.reveal_petitioner` opens one on an audited request.
    The phone is kept whole (the petitioner proves a lookup code with its last digits);
    views mask it.
    """

    name: str
    id_number_masked: str | None
    address: str | None
    phone: str | None
    is_representative: bool


@dataclass(frozen=True, slots=True)
class Item:
    """A petition item as the layers above see it."""

    id: str
    lookup_code: str
    national_number: str | None
    rule_set: RuleSet
    state: ItemState
    version: int
    type: ItemType
    category: str | None
    place: str | None
    request: str
    facts: str
    reasons: str
    channel: Channel
    online_platform: str | None
    origin_level: OriginLevel | None
    led_by_other_unit: bool
    urgent: bool
    major: bool
    confidential: bool
    anonymous: bool
    is_group: bool
    group_size: int | None
    petitioners: tuple[PetitionerInfo, ...]
    agent_name: str | None
    agent_authorisation: str | None
    registering_unit_id: int
    handling_unit_id: int | None
    subject_unit_id: int | None
    co_handling_unit_ids: tuple[int, ...]
    handler_account_ids: tuple[int, ...]
    recused_account_ids: tuple[int, ...]
    session_id: str | None
    duplicate_of_id: str | None
    reviews_item_id: str | None
    registered_at: dt.datetime
    outcome: Outcome | None
    carried_out: bool | None
    resolved: bool
    accepted_on_time: bool | None
    opinion_on_time: bool | None
    concluded_at: dt.datetime | None
    due_on: dt.date | None
    due_what: str | None
    due_article: str | None
    eval_acceptance: bool | None
    eval_handling: bool | None
    #: the account that recorded the rating for a petitioner without a phone, None when the
    #: petitioner rated with the lookup code
    eval_acceptance_by: int | None = None
    eval_handling_by: int | None = None
    repeat: bool = False

    def target(self, *, holder_only: bool = False) -> ItemTarget:
        """What the policy needs of this item.

        ``holder_only``: as seen by the unit holding it now (lifecycle actions act for it).
        """
        handlers = frozenset(self.handler_account_ids)
        recused = frozenset(self.recused_account_ids)
        if holder_only:
            return ItemTarget(
                id=self.id,
                registering_unit_id=self.handling_unit_id or self.registering_unit_id,
                confidential=self.confidential,
                handler_account_ids=handlers,
                recused_account_ids=recused,
            )
        return ItemTarget(
            id=self.id,
            registering_unit_id=self.registering_unit_id,
            handling_unit_id=self.handling_unit_id,
            co_handling_unit_ids=frozenset(self.co_handling_unit_ids),
            confidential=self.confidential,
            handler_account_ids=handlers,
            recused_account_ids=recused,
        )


@dataclass(frozen=True, slots=True)
class ItemHistoryEntry:
    """One entry of the append-only history."""

    seq: int
    at: dt.datetime
    account_id: int | None
    type: EventType
    from_state: ItemState | None
    to_state: ItemState
    reason: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ProgressStep:
    """One public step: when the item reached a state."""

    on: dt.date
    state: ItemState
    label: str


@dataclass(frozen=True, slots=True)
class PublicProgress:
    """What anyone holding the lookup code may see: no names, no content."""

    lookup_code: str
    state: ItemState
    label: str
    registered_on: dt.date
    steps: tuple[ProgressStep, ...]
    due_on: dt.date | None
    can_evaluate_acceptance: bool
    can_evaluate_handling: bool
    #: which period ``due_on`` ends (``accept``, ``opinion`` ...)
    due_what: str | None = None


@dataclass(frozen=True, slots=True)
class DueItem:
    """An item with a unit deadline, for due-soon and overdue lists."""

    item_id: str
    lookup_code: str
    state: ItemState
    due_unit_id: int | None
    handling_unit_id: int | None
    due_on: dt.date
    due_what: str
    due_article: str
    days_left: int
    confidential: bool


@dataclass(frozen=True, slots=True)
class DuplicateCandidate:
    """An earlier item that may be the same petition."""

    item_id: str
    lookup_code: str
    state: ItemState
    registered_at: dt.datetime
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BacklogCaseInfo:
    """A backlog case with its "five ones" and involved units."""

    id: int
    item_id: str
    leader_account_id: int
    team: str
    resolution_plan: str
    stability_plan: str
    ledger: str
    unit_ids: tuple[int, ...]
    flagged_at: dt.datetime
    #: the day the resolution plan is due (化解时限), if set
    plan_due_on: dt.date | None = None
    #: when the case was closed (销号): its item concluded and resolved
    closed_at: dt.datetime | None = None
    #: who closed it
    closed_by: int | None = None


@dataclass(frozen=True, slots=True)
class ProgressEntry:
    """A monthly progress entry of a unit on a backlog case."""

    id: int
    case_id: int
    unit_id: int
    month: dt.date
    text: str
    account_id: int | None
    written_at: dt.datetime


@dataclass(frozen=True, slots=True)
class BacklogAttention:
    """An involved unit of a backlog case that needs attention.

    Attributes:
        missing_months: months (``YYYY-MM``) the unit has not reported on.
        plan_overdue: the case is open past its plan's due day (the same for every unit).
        days_overdue: days since the plan's due day, 0 when not overdue.
    """

    case_id: int
    item_id: str
    unit_id: int
    leader_account_id: int
    plan_due_on: dt.date | None
    plan_overdue: bool
    days_overdue: int
    missing_months: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StoredFile:
    """An uploaded file written under the attachments directory, not yet recorded."""

    item_id: str
    name: str
    relative_path: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """A file attached to an item.

    Attributes:
        relative_path: where the file is under the attachments directory.
    """

    id: int
    item_id: str
    name: str
    content_type: str
    size: int
    sha256: str
    added_by: int | None
    added_at: dt.datetime
    relative_path: str
