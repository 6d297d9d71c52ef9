"""SQLAlchemy models of petition items, their history, routing, backlog cases.

Org units, accounts and sessions belong to ``records/models.py`` (the lead's); columns that
refer to them (``*_unit_id``, ``*_account_id``, ``session_id``) are plain indexed integers /
strings without a ForeignKey constraint for now, so this module's tables can be created on
their own. The migration may add the constraints (``org_units.id``, ``accounts.id``,
``sessions.id``).

Columns prefixed ``due_`` and the ``*_on_time`` flags are derived from the append-only
``item_events`` by ``records/lifecycle.py`` and rewritten on every event; the history is the
truth and is never updated.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from records.base import Base, UTCDateTime, created_at, intpk, name200, new_id, timestamp

__all__ = [
    "BacklogCase",
    "BacklogProgress",
    "BacklogUnit",
    "Channel",
    "ItemAttachment",
    "ItemClockStop",
    "ItemCoHandler",
    "ItemEvent",
    "ItemExtension",
    "ItemHandler",
    "ItemRow",
    "ItemTransfer",
    "ItemType",
    "ItemSupervision",
    "ItemVisit",
    "ONLINE_PLATFORMS",
    "VisitKind",
    "OriginLevel",
    "Outcome",
    "Petitioner",
    "TransferKind",
]

MAX_REPRESENTATIVES = 5


class ItemType(StrEnum):
    """Kind of petition (DOMAIN.md)."""

    SUGGESTION = "suggestion"  # 建议意见
    ACCUSATION = "accusation"  # 检举控告 (confidential to handlers, Art. 30)
    COMPLAINT = "complaint"  # 申诉求决


class Channel(StrEnum):
    """How the petition arrived (Art. 17)."""

    LETTER = "letter"
    VISIT = "visit"
    ONLINE = "online"
    PHONE = "phone"
    FAX = "fax"
    VIDEO = "video"


#: The online platforms an online item may name (DOMAIN.md, the district's 2021 report).
#: New items must name one of these; values stored before the list existed (free text) stay
#: readable and are counted under their own name.
ONLINE_PLATFORMS = (
    "人民网领导留言板",
    "国家信访局网上信访平台",
    "省领导信箱",
    "问政平台",
    "市长信箱",
    "区领导信箱",
    "其他网上平台",
)


class VisitKind(StrEnum):
    """A visit counted in the figures every bureau reports (batches 批次, person-times 人次)."""

    WALK_IN = "walk_in"  # 来访接待: received at a reception unit in person
    LEADER_RECEPTION = "leader_reception"  # 领导接访: taken by the leader on duty
    OUTREACH = "outreach"  # 领导下访: a leader goes to the petitioners
    TO_CITY = "to_city"  # 赴市上访: residents went to the city
    TO_PROVINCE = "to_province"  # 赴省上访
    TO_BEIJING = "to_beijing"  # 进京上访


#: a visit of at least this many people is a collective visit (集体访, 5人以上)
COLLECTIVE_MIN_PERSONS = 5


class OriginLevel(StrEnum):
    """Who assigned the item from above."""

    CENTRAL = "central"
    PROVINCIAL = "provincial"
    MUNICIPAL = "municipal"


class Outcome(StrEnum):
    """How the item was handled (Arts. 31-33)."""

    SUPPORT = "support"
    EXPLAIN = "explain"
    NOT_SUPPORT = "not_support"
    MEDIATED = "mediated"
    DIVERTED = "diverted"


class ExternalOrganKind(StrEnum):
    """An organ outside the district's org tree an item can be transferred to."""

    CITY_DEPARTMENT = "city_department"  # 市级部门
    COURT = "court"  # 人民法院
    PROCURATORATE = "procuratorate"  # 人民检察院
    DISCIPLINE_INSPECTION = "discipline_inspection"  # 纪检监察机关
    OTHER = "other"


class TransferKind(StrEnum):
    """Transfer (转送) or assignment (交办, with a deadline and a completion report)."""

    TRANSFER = "transfer"
    ASSIGN = "assign"


str16 = String(16)
str32 = String(32)
str64 = String(64)


class ItemRow(Base):
    """A petition item (信访事项)."""

    __tablename__ = "item_items"
    __table_args__ = (
        Index("ix_item_items_reg_unit_at", "registering_unit_id", "registered_at"),
        # Lists by registration time (newest first) and period counts.
        Index("ix_item_items_registered_at", "registered_at"),
        # Covering indexes of the annual report, led by the columns it groups by: SQLite has
        # no hash aggregation, so a GROUP BY over a range of registered_at sorted a million
        # index entries (2.3 s of a 2.3 s report). Read in this order the groups arrive
        # sorted and each row costs a comparison and a count instead of a dozen SUM(CASE).
        # records/statistics.py reads the whole index once; its GROUP BY lists the columns
        # before registered_at in this order.
        Index(
            "ix_item_items_report",
            "channel",
            "state",
            "type",
            "online_platform",
            "origin_level",
            "led_by_other_unit",
            "resolved",
            "accepted_on_time",
            "opinion_on_time",
            "eval_handling",
            "registered_at",
            "registering_unit_id",
            "handling_unit_id",
            "subject_unit_id",
        ),
        Index(
            "ix_item_items_report_category",
            "category",
            "registered_at",
            "registering_unit_id",
            "handling_unit_id",
        ),
        Index(
            "ix_item_items_report_subject",
            "subject_unit_id",
            "registered_at",
            "registering_unit_id",
            "handling_unit_id",
        ),
        Index("ix_item_items_handling_unit", "handling_unit_id"),
        Index("ix_item_items_due", "due_unit_id", "due_on"),
        Index("ix_item_items_national_number", "national_number"),
        CheckConstraint("group_size IS NULL OR group_size >= 1", name="group_size_positive"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    lookup_code: Mapped[str] = mapped_column(String(10), unique=True)
    national_number: Mapped[str | None] = mapped_column(str64)
    rule_set: Mapped[str] = mapped_column(String(4))
    state: Mapped[str] = mapped_column(String(24))
    version: Mapped[int] = mapped_column(Integer, default=1)

    type: Mapped[str] = mapped_column(str16)
    category: Mapped[str | None] = mapped_column(str64)
    place: Mapped[str | None] = mapped_column(String(200))
    request: Mapped[str] = mapped_column(Text)
    facts: Mapped[str] = mapped_column(Text, default="")
    reasons: Mapped[str] = mapped_column(Text, default="")

    channel: Mapped[str] = mapped_column(str16)
    online_platform: Mapped[str | None] = mapped_column(str64)
    origin_level: Mapped[str | None] = mapped_column(str16)
    #: led by another unit: excluded from the resolution rate, as the annual report does
    led_by_other_unit: Mapped[bool] = mapped_column(Boolean, default=False)
    #: a repeat petition (重复信访): the same person and matter again
    repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    major: Mapped[bool] = mapped_column(Boolean, default=False)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)

    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    is_group: Mapped[bool] = mapped_column(Boolean, default=False)
    group_size: Mapped[int | None] = mapped_column(Integer)
    agent_name: Mapped[str | None] = mapped_column(String(200))
    #: reference of the written authorisation (document number or attachment id)
    agent_authorisation: Mapped[str | None] = mapped_column(String(200))
    agent_account_id: Mapped[int | None] = mapped_column(Integer)  # accounts.id

    registering_unit_id: Mapped[int] = mapped_column(Integer)  # org_units.id
    handling_unit_id: Mapped[int | None] = mapped_column(Integer)  # org_units.id
    #: the unit complained about (被反映单位), for "units most complained about"
    subject_unit_id: Mapped[int | None] = mapped_column(Integer)  # org_units.id
    registered_by: Mapped[int | None] = mapped_column(Integer)  # accounts.id
    session_id: Mapped[str | None] = mapped_column(str32, index=True)  # sessions.id
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    duplicate_of_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("item_items.id"), index=True
    )
    reviews_item_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("item_items.id"), index=True
    )

    outcome: Mapped[str | None] = mapped_column(str16)
    carried_out: Mapped[bool | None] = mapped_column(Boolean)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    accepted_on_time: Mapped[bool | None] = mapped_column(Boolean)
    opinion_on_time: Mapped[bool | None] = mapped_column(Boolean)
    concluded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    due_on: Mapped[dt.date | None] = mapped_column(Date)
    due_what: Mapped[str | None] = mapped_column(str32)
    due_article: Mapped[str | None] = mapped_column(String(120))
    due_obligor: Mapped[str | None] = mapped_column(str16)
    #: the unit that owes the current deadline
    due_unit_id: Mapped[int | None] = mapped_column(Integer)

    eval_acceptance: Mapped[bool | None] = mapped_column(Boolean)
    eval_acceptance_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    eval_handling: Mapped[bool | None] = mapped_column(Boolean)
    eval_handling_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: the account that recorded a rating for a petitioner without a phone; None: the
    #: petitioner rated with the lookup code
    eval_acceptance_by: Mapped[int | None] = mapped_column(Integer)  # accounts.id
    eval_handling_by: Mapped[int | None] = mapped_column(Integer)  # accounts.id

    created_at: Mapped[created_at]

    # UPDATE ... WHERE version = ?: two officers acting on one item at once cannot both win.
    __mapper_args__ = {"version_id_col": version}


class Petitioner(Base):
    """A petitioner of an item; a group item lists its representatives (≤5, Art. 20)."""

    __tablename__ = "item_petitioners"
    __table_args__ = (
        Index("ix_item_petitioners_name_phone", "name", "phone"),
        Index("ix_item_petitioners_id_number_digest", "id_number_digest"),
        UniqueConstraint("item_id", "position", name="uq_item_petitioners_item_position"),
    )

    id: Mapped[intpk]
    item_id: Mapped[str] = mapped_column(ForeignKey("item_items.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[name200]
    #: sealed (records/keyring.py); never shown: views show ``id_number_masked``
    id_number: Mapped[str | None] = mapped_column(String(200))
    id_number_masked: Mapped[str | None] = mapped_column(str32)
    #: keyed digest of the number, for the duplicate search (recomputed on key rotation)
    id_number_digest: Mapped[str | None] = mapped_column(str64)
    address: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(str32)
    is_representative: Mapped[bool] = mapped_column(Boolean, default=False)


class ItemCoHandler(Base):
    """A co-handling unit (协办) of an item."""

    __tablename__ = "item_co_handlers"

    item_id: Mapped[str] = mapped_column(ForeignKey("item_items.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # org_units.id


class ItemHandler(Base):
    """An account handling an item, or recused from it (Art. 28)."""

    __tablename__ = "item_handlers"

    item_id: Mapped[str] = mapped_column(ForeignKey("item_items.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    recused: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")


class ItemEvent(Base):
    """One entry of an item's append-only history (also its audit trail). Never updated."""

    __tablename__ = "item_events"
    __table_args__ = (
        UniqueConstraint("item_id", "seq", name="uq_item_events_item_seq"),
        # Reports as of a date read the events from as_of on (records/statistics.py): an
        # index range, covering what they group, empty for a report as of now.
        Index("ix_item_events_at", "at", "item_id", "seq", "type"),
    )

    id: Mapped[intpk]
    item_id: Mapped[str] = mapped_column(ForeignKey("item_items.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[timestamp]
    account_id: Mapped[int | None] = mapped_column(Integer)  # accounts.id
    type: Mapped[str] = mapped_column(str32)
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ItemTransfer(Base):
    """A transfer (转送) or assignment (交办) of an item to a unit."""

    __tablename__ = "item_transfers"
    # Covering for the report's transfer counts, with or without a unit subtree.
    __table_args__ = (Index("ix_item_transfers_at_kind_unit", "at", "kind", "from_unit_id"),)

    id: Mapped[intpk]
    item_id: Mapped[str] = mapped_column(ForeignKey("item_items.id"), index=True)
    kind: Mapped[str] = mapped_column(str16)
    from_unit_id: Mapped[int] = mapped_column(Integer, index=True)  # org_units.id
    to_unit_id: Mapped[int] = mapped_column(Integer, index=True)  # org_units.id
    at: Mapped[timestamp]
    account_id: Mapped[int | None] = mapped_column(Integer)
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    objection_reason: Mapped[str | None] = mapped_column(Text)
    objected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    completion_report: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ItemExternalTransfer(Base):
    """A transfer to an organ outside the district's tree: a name, no unit id.

    The item leaves the district's handling (state ``transferred_out``) and stays on record.
    """

    __tablename__ = "item_external_transfers"

    id: Mapped[intpk]
    item_id: Mapped[str] = mapped_column(ForeignKey("item_items.id"), index=True)
    from_unit_id: Mapped[int] = mapped_column(Integer)  # org_units.id
    organ: Mapped[name200]
    organ_kind: Mapped[str] = mapped_column(str32)
    at: Mapped[timestamp]
    account_id: Mapped[int | None] = mapped_column(Integer)  # accounts.id


class ItemExtension(Base):
    """An extension of the handling period, with the approving account (Art. 34)."""

    __tablename__ = "item_extensions"

    id: Mapped[intpk]
    item_id: Mapped[str] = mapped_column(ForeignKey("item_items.id"), index=True)
    days: Mapped[int] = mapped_column(Integer)
    approved_by: Mapped[int] = mapped_column(Integer)  # accounts.id
    reason: Mapped[str] = mapped_column(Text)
    approved_at: Mapped[timestamp]


class ItemClockStop(Base):
    """Days excluded from the re-review period (hearing, Art. 36)."""

    __tablename__ = "item_clock_stops"

    id: Mapped[intpk]
    item_id: Mapped[str] = mapped_column(ForeignKey("item_items.id"), index=True)
    first_on: Mapped[dt.date] = mapped_column(Date)
    last_on: Mapped[dt.date | None] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text, default="")


class ItemAttachment(Base):
    """A file attached to an item (letter scan, authorisation, evidence)."""

    __tablename__ = "item_attachments"

    id: Mapped[intpk]
    item_id: Mapped[str] = mapped_column(ForeignKey("item_items.id"), index=True)
    #: the file name as uploaded (shown and offered on download)
    name: Mapped[name200]
    #: where the file is, relative to the attachments directory (``<item>/<random>.<ext>``)
    path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    #: the type checked against the file's first bytes, e.g. ``application/pdf``
    content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    added_by: Mapped[int | None] = mapped_column(Integer)  # accounts.id
    added_at: Mapped[created_at]


class BacklogCase(Base):
    """A backlog / key case (信访积案) with the "five ones" (五个一)."""

    __tablename__ = "backlog_cases"

    id: Mapped[intpk]
    item_id: Mapped[str] = mapped_column(ForeignKey("item_items.id"), unique=True)
    leader_account_id: Mapped[int] = mapped_column(Integer, index=True)  # 一名责任领导
    team: Mapped[str] = mapped_column(Text)  # 一个工作专班
    resolution_plan: Mapped[str] = mapped_column(Text)  # 一套化解方案
    stability_plan: Mapped[str] = mapped_column(Text)  # 一套稳控措施
    ledger: Mapped[str] = mapped_column(Text)  # 一份工作台账
    #: the day by which the resolution plan is to have resolved the case (化解时限); a case
    #: still open after it has an overdue plan
    plan_due_on: Mapped[dt.date | None] = mapped_column(Date)
    flagged_at: Mapped[timestamp]
    flagged_by: Mapped[int | None] = mapped_column(Integer)
    #: closed (销号): set once, when its item is concluded and resolved
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[int | None] = mapped_column(Integer)  # accounts.id


class BacklogUnit(Base):
    """A unit involved in a backlog case; it owes a progress entry every month."""

    __tablename__ = "backlog_units"

    case_id: Mapped[int] = mapped_column(ForeignKey("backlog_cases.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # org_units.id


class BacklogProgress(Base):
    """A unit's monthly progress entry on a backlog case."""

    __tablename__ = "backlog_progress"
    __table_args__ = (
        UniqueConstraint("case_id", "unit_id", "month", name="uq_backlog_progress_month"),
    )

    id: Mapped[intpk]
    case_id: Mapped[int] = mapped_column(ForeignKey("backlog_cases.id"), index=True)
    unit_id: Mapped[int] = mapped_column(Integer)
    #: first day of the month reported on
    month: Mapped[dt.date] = mapped_column(Date)
    text: Mapped[str] = mapped_column(Text)
    account_id: Mapped[int | None] = mapped_column(Integer)
    written_at: Mapped[timestamp]


class ItemVisit(Base):
    """One batch (批次) of visitors; ``persons`` are its person-times (人次).

    A walk-in visit, a leader's reception or outreach visit, or residents' visit to a higher
    level. Recorded once, never updated; ``recorded_at`` dates it for reports as of a date.
    """

    __tablename__ = "item_visits"
    __table_args__ = (
        Index("ix_item_visits_day_unit", "visited_on", "unit_id", "kind"),
        CheckConstraint("persons >= 1", name="persons_positive"),
    )

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(24))
    #: the receiving unit; for visits to higher levels, the unit the visitors belong to
    unit_id: Mapped[int] = mapped_column(Integer)  # org_units.id
    visited_on: Mapped[dt.date] = mapped_column(Date)
    persons: Mapped[int] = mapped_column(Integer)
    collective: Mapped[bool] = mapped_column(Boolean, default=False)
    leader_account_id: Mapped[int | None] = mapped_column(Integer)  # accounts.id
    item_id: Mapped[str | None] = mapped_column(ForeignKey("item_items.id"), index=True)
    place: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[int | None] = mapped_column(Integer)  # accounts.id
    recorded_at: Mapped[created_at]


class ItemSupervision(Base):
    """Supervision (督办) of an item by a unit above its handler: recorded once, counted."""

    __tablename__ = "item_supervisions"

    id: Mapped[intpk]
    item_id: Mapped[str] = mapped_column(ForeignKey("item_items.id"), index=True)
    unit_id: Mapped[int] = mapped_column(Integer)  # org_units.id, the supervising unit
    account_id: Mapped[int | None] = mapped_column(Integer)  # accounts.id
    reason: Mapped[str] = mapped_column(Text)
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    at: Mapped[created_at]
