"""The wire models of items: answers (built with ``Model.of(...)``) and their schemas.

Each answer of the item routes is one of these models dumped to JSON (:func:`web.rest.reply`);
the OpenAPI document's schemas are generated from them (``web.apidoc``). A new field is one
line here (and the value it comes from in ``of``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from records import items
from records.calendar import HolidayCalendar
from records.item_models import Channel, ItemType, OriginLevel, Outcome, VisitKind
from records.item_periods import is_provisional
from records.items import ATTACHMENT_TYPES, MAX_ATTACHMENT_BYTES
from records.keyring import mask_phone
from records.lifecycle import STATE_LABELS_ZH, EventType, ItemState, RuleSet
from records.lookup import format_code
from web.items.actions import ACTIONS, allowed_actions
from web.rest import ID32, LOOKUP_CODE, Choice, Date, DateTime, Wire

MONTH = Annotated[str, Field(pattern=r"^\d{4}-\d{2}$")]
#: the action routes, by name (``allowed_actions`` lists some of them)
ACTION_NAME = Annotated[str, Choice(tuple(a.name for a in ACTIONS))]


class Petitioner(Wire):
    """A petitioner of an item; identity number and phone masked."""

    position: int
    name: str
    id_number: str | None
    address: str | None
    phone: str | None
    is_representative: bool


class Due(Wire):
    """The unit's next deadline."""

    on: Date
    what: str | None
    article: str | None
    #: the date lies in a year without an official holiday notice (national rules): it may
    #: move when the notice is imported
    provisional: bool


def _summary_fields(item: items.Item, calendar: HolidayCalendar, *, full: bool) -> dict[str, Any]:
    return {
        "id": item.id,
        "lookup_code": format_code(item.lookup_code),
        "state": item.state,
        "state_label": STATE_LABELS_ZH[item.state],
        "type": item.type,
        "channel": item.channel,
        "category": item.category,
        "urgent": item.urgent,
        "major": item.major,
        "confidential": item.confidential,
        "anonymous": item.anonymous,
        "is_group": item.is_group,
        "registering_unit_id": item.registering_unit_id,
        "handling_unit_id": item.handling_unit_id,
        "registered_at": item.registered_at,
        "due": (
            Due(
                on=item.due_on,
                what=item.due_what,
                article=item.due_article,
                provisional=is_provisional(calendar, item.due_on, item.due_what),
            )
            if item.due_on is not None
            else None
        ),
        "petitioners": [
            Petitioner(
                position=position,
                name=pt.name,
                id_number=pt.id_number_masked,
                address=pt.address if full else None,
                phone=mask_phone(pt.phone) if full else None,
                is_representative=pt.is_representative,
            )
            for position, pt in enumerate(item.petitioners)
        ],
        "request": item.request if full else item.request[:80],
    }


class ItemSummary(Wire):
    """An item in a list: the request's first 80 characters, no address nor phone."""

    id: ID32
    lookup_code: LOOKUP_CODE
    state: ItemState
    state_label: str
    type: ItemType
    channel: Channel
    category: str | None
    urgent: bool
    major: bool
    confidential: bool
    anonymous: bool
    is_group: bool
    registering_unit_id: int
    handling_unit_id: int | None
    registered_at: DateTime
    due: Due | None
    petitioners: list[Petitioner]
    request: str

    @classmethod
    def of(cls, item: items.Item, calendar: HolidayCalendar) -> ItemSummary:
        """The list form of ``item``."""
        return cls(**_summary_fields(item, calendar, full=False))


class Evaluation(Wire):
    """The petitioner's ratings; ``*_recorded_by``: the official who recorded it for them."""

    acceptance: bool | None
    handling: bool | None
    acceptance_recorded_by: int | None
    handling_recorded_by: int | None


class Item(ItemSummary):
    """An item in full (identity numbers and phones masked: ``…/reveal`` shows one)."""

    national_number: str | None
    rule_set: RuleSet
    version: int
    place: str | None
    facts: str
    reasons: str
    online_platform: str | None
    origin_level: OriginLevel | None
    led_by_other_unit: bool
    repeat: bool
    group_size: int | None
    agent_name: str | None
    agent_authorisation: str | None
    subject_unit_id: int | None
    co_handling_unit_ids: list[int]
    handler_account_ids: list[int]
    recused_account_ids: list[int]
    session_id: str | None
    duplicate_of_id: ID32 | None
    reviews_item_id: ID32 | None
    outcome: Outcome | None
    carried_out: bool | None
    resolved: bool
    accepted_on_time: bool | None
    opinion_on_time: bool | None
    concluded_at: DateTime | None
    evaluation: Evaluation
    allowed_actions: list[ACTION_NAME]

    @classmethod
    def fields_of(cls, item: items.Item, calendar: HolidayCalendar) -> dict[str, Any]:
        """Every field of ``item``'s full form."""
        return _summary_fields(item, calendar, full=True) | {
            "national_number": item.national_number,
            "rule_set": item.rule_set,
            "version": item.version,
            "place": item.place,
            "facts": item.facts,
            "reasons": item.reasons,
            "online_platform": item.online_platform,
            "origin_level": item.origin_level,
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
            "outcome": item.outcome,
            "carried_out": item.carried_out,
            "resolved": item.resolved,
            "accepted_on_time": item.accepted_on_time,
            "opinion_on_time": item.opinion_on_time,
            "concluded_at": item.concluded_at,
            "evaluation": Evaluation(
                acceptance=item.eval_acceptance,
                handling=item.eval_handling,
                acceptance_recorded_by=item.eval_acceptance_by,
                handling_recorded_by=item.eval_handling_by,
            ),
            "allowed_actions": allowed_actions(item.state),
        }

    @classmethod
    def of(cls, item: items.Item, calendar: HolidayCalendar) -> Item:
        """The full form of ``item``."""
        return cls(**cls.fields_of(item, calendar))


class Items(Wire):
    """``GET /api/items``."""

    items: list[ItemSummary]


class Duplicate(Wire):
    """A possible duplicate found at registration."""

    item_id: ID32
    lookup_code: LOOKUP_CODE
    state: ItemState
    registered_at: DateTime
    score: float
    reasons: list[str]

    @classmethod
    def of(cls, c: items.DuplicateCandidate) -> Duplicate:
        """The wire form of ``c``."""
        return cls(
            item_id=c.item_id,
            lookup_code=format_code(c.lookup_code),
            state=c.state,
            registered_at=c.registered_at,
            score=c.score,
            reasons=list(c.reasons),
        )


class Registered(Wire):
    """``POST /api/items``: the item and the possible duplicates the caller may read."""

    item: Item
    possible_duplicates: list[Duplicate]


class HistoryEntry(Wire):
    """One entry of the append-only history."""

    seq: int
    at: DateTime
    account_id: int | None
    account_name: str | None
    type: EventType
    from_state: ItemState | None
    to_state: ItemState
    reason: str
    data: dict[str, Any]

    @classmethod
    def of(cls, e: items.ItemHistoryEntry, account_name: str | None) -> HistoryEntry:
        """The wire form of ``e``."""
        return cls(
            seq=e.seq,
            at=e.at,
            account_id=e.account_id,
            account_name=account_name,
            type=e.type,
            from_state=e.from_state,
            to_state=e.to_state,
            reason=e.reason,
            data=dict(e.data),
        )


class History(Wire):
    """``GET /api/items/{item_id}/history``."""

    item_id: ID32
    history: list[HistoryEntry]


class DueItem(Wire):
    """An entry of a due list."""

    item_id: ID32
    lookup_code: LOOKUP_CODE
    state: ItemState
    due_unit_id: int | None
    handling_unit_id: int | None
    due_on: Date
    due_what: str
    due_article: str
    due_provisional: bool
    days_left: int
    confidential: bool

    @classmethod
    def of(cls, d: items.DueItem, calendar: HolidayCalendar) -> DueItem:
        """The wire form of ``d``."""
        return cls(
            item_id=d.item_id,
            lookup_code=format_code(d.lookup_code),
            state=d.state,
            due_unit_id=d.due_unit_id,
            handling_unit_id=d.handling_unit_id,
            due_on=d.due_on,
            due_what=d.due_what,
            due_article=d.due_article,
            due_provisional=is_provisional(calendar, d.due_on, d.due_what),
            days_left=d.days_left,
            confidential=d.confidential,
        )


class DueList(Wire):
    """A due list as of ``today`` (China)."""

    today: Date
    items: list[DueItem]


class ProgressStep(Wire):
    """A step of the public progress."""

    on: Date
    state: ItemState
    label: str


class PublicProgress(Wire):
    """Progress as the petitioner sees it: states and dates, nothing personal."""

    lookup_code: LOOKUP_CODE
    state: ItemState
    label: str
    registered_on: Date
    due_on: Date | None
    due_provisional: bool
    steps: list[ProgressStep]
    can_evaluate_acceptance: bool
    can_evaluate_handling: bool

    @classmethod
    def of(cls, pp: items.PublicProgress, calendar: HolidayCalendar) -> PublicProgress:
        """The wire form of ``pp``."""
        provisional = pp.due_on is not None and is_provisional(calendar, pp.due_on, pp.due_what)
        return cls(
            lookup_code=pp.lookup_code,
            state=pp.state,
            label=pp.label,
            registered_on=pp.registered_on,
            due_on=pp.due_on,
            due_provisional=provisional,
            steps=[ProgressStep(on=s.on, state=s.state, label=s.label) for s in pp.steps],
            can_evaluate_acceptance=pp.can_evaluate_acceptance,
            can_evaluate_handling=pp.can_evaluate_handling,
        )


class BacklogCase(Wire):
    """A backlog case (the five ones)."""

    id: int
    item_id: ID32
    leader_account_id: int
    team: str
    resolution_plan: str
    stability_plan: str
    ledger: str
    unit_ids: list[int]
    flagged_at: DateTime
    plan_due_on: Date | None
    closed_at: DateTime | None
    closed_by: int | None

    @classmethod
    def fields_of(cls, c: items.BacklogCaseInfo) -> dict[str, Any]:
        """The fields of ``c``."""
        return {
            "id": c.id,
            "item_id": c.item_id,
            "leader_account_id": c.leader_account_id,
            "team": c.team,
            "resolution_plan": c.resolution_plan,
            "stability_plan": c.stability_plan,
            "ledger": c.ledger,
            "unit_ids": list(c.unit_ids),
            "flagged_at": c.flagged_at,
            "plan_due_on": c.plan_due_on,
            "closed_at": c.closed_at,
            "closed_by": c.closed_by,
        }

    @classmethod
    def of(cls, c: items.BacklogCaseInfo) -> BacklogCase:
        """The wire form of ``c``."""
        return cls(**cls.fields_of(c))


#: involved unit id → the months without its progress entry
MissingMonths = dict[str, list[MONTH]]


class BacklogCaseSummary(BacklogCase):
    """A case in a list, with its item's state and the months without an entry."""

    lookup_code: LOOKUP_CODE
    state: ItemState
    state_label: str
    due_on: Date | None
    request: str
    missing_months: MissingMonths
    missing_count: int


class BacklogCases(Wire):
    """``GET /api/backlog``."""

    cases: list[BacklogCaseSummary]


class ProgressEntry(Wire):
    """A unit's monthly progress entry."""

    id: int
    case_id: int
    unit_id: int
    month: MONTH
    text: str
    account_id: int | None
    written_at: DateTime

    @classmethod
    def of(cls, e: items.ProgressEntry) -> ProgressEntry:
        """The wire form of ``e``."""
        return cls(
            id=e.id,
            case_id=e.case_id,
            unit_id=e.unit_id,
            month=f"{e.month:%Y-%m}",
            text=e.text,
            account_id=e.account_id,
            written_at=e.written_at,
        )


class BacklogCaseDetail(BacklogCase):
    """A case with its progress entries and missing months."""

    lookup_code: LOOKUP_CODE
    state: ItemState
    entries: list[ProgressEntry]
    missing_months: MissingMonths
    resolved: bool
    #: whether the reader may close (销号) the case
    may_close: bool
    closed_by_name: str | None


class Missing(Wire):
    """``GET /api/backlog/{case_id}/missing``."""

    case_id: int
    through: Date
    missing_months: dict[str, list[str]]


class BacklogAttention(Wire):
    """A case needing a unit's attention: an overdue plan or missing months."""

    case_id: int
    item_id: ID32
    lookup_code: LOOKUP_CODE
    unit_id: int
    unit_name: str
    leader_account_id: int
    plan_due_on: Date | None
    plan_overdue: bool
    days_overdue: Annotated[int, Field(ge=0)]
    missing_months: list[MONTH]


class Attention(Wire):
    """``GET /api/backlog/attention``."""

    today: Date
    overdue_plans: int
    missing_entries: int
    units: list[BacklogAttention]


ATTACHMENT_CONTENT_TYPES = tuple(sorted({t for t, _ in ATTACHMENT_TYPES.values()}))


class Attachment(Wire):
    """An attachment (no server path)."""

    id: int
    item_id: ID32
    name: str
    content_type: Annotated[str, Choice(ATTACHMENT_CONTENT_TYPES)]
    size: Annotated[int, Field(ge=1, le=MAX_ATTACHMENT_BYTES)]
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
    added_by: int | None
    added_at: DateTime

    @classmethod
    def of(cls, a: items.AttachmentInfo) -> Attachment:
        """The wire form of ``a``."""
        return cls(
            id=a.id,
            item_id=a.item_id,
            name=a.name,
            content_type=a.content_type,
            size=a.size,
            sha256=a.sha256,
            added_by=a.added_by,
            added_at=a.added_at,
        )


class Attachments(Wire):
    """``GET /api/items/{item_id}/attachments``."""

    attachments: list[Attachment]


class Revealed(Wire):
    """One petitioner's full identity number or phone."""

    item_id: ID32
    position: int
    field: items.RevealField
    value: str | None


class Visit(Wire):
    """A recorded batch of visitors."""

    id: int
    kind: VisitKind
    kind_label: str
    unit_id: int
    visited_on: Date
    persons: int
    collective: bool
    leader_account_id: int | None
    item_id: ID32 | None
    place: str | None
    note: str
    recorded_by: int | None
    recorded_at: DateTime


class Visits(Wire):
    """``GET /api/visits``."""

    visits: list[Visit]


class Supervision(Wire):
    """A supervision (督办) of an item."""

    id: int
    unit_id: int
    account_id: int | None
    reason: str
    due_on: Date | None
    at: DateTime


class Supervised(Item):
    """The item with its supervisions."""

    supervisions: list[Supervision]


class Platforms(Wire):
    """The online platforms a new online item may name."""

    platforms: list[str]
