"""ORM models of the foundation: org units, accounts, terminals, invites, sessions, audit log.

Petition items live in ``records/item_models.py``. Layers above never see these rows: the
functions in ``records/`` return plain dataclasses.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from records.base import Base, UTCDateTime, code64, created_at, intpk, name200, strpk, timestamp
from records.enums import (
    AdmissionState,
    ParticipantRole,
    PrincipalKind,
    Role,
    SessionKind,
    SessionState,
    UnitLevel,
)


def _enum(cls: type[Any]) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        length=24,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class OrgUnit(Base):
    """A unit of the four-level tree."""

    __tablename__ = "org_units"

    id: Mapped[intpk]
    code: Mapped[code64] = mapped_column(unique=True)
    name: Mapped[name200]
    level: Mapped[UnitLevel] = mapped_column(_enum(UnitLevel))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    # the unit whose reception centre answers this unit's visits (communities: their district's)
    is_petition_bureau: Mapped[bool] = mapped_column(Boolean, default=False)
    is_reception: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]


class Account(Base):
    """An official with a password and one or more roles."""

    __tablename__ = "accounts"

    id: Mapped[intpk]
    username: Mapped[code64] = mapped_column(unique=True)
    display_name: Mapped[name200]
    password_hash: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]


class AccountRole(Base):
    """One role of one account."""

    __tablename__ = "account_roles"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    role: Mapped[Role] = mapped_column(_enum(Role), primary_key=True)


class LoginSession(Base):
    """A browser login: the cookie carries a random token, the table its hash."""

    __tablename__ = "login_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[created_at]
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    remote: Mapped[str] = mapped_column(String(64), default="")


class Terminal(Base):
    """A community kiosk; it signs in with a device credential shown once at creation."""

    __tablename__ = "terminals"

    id: Mapped[intpk]
    name: Mapped[name200]
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[created_at]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Session(Base):
    """A petition session (visit, call, conference, mediation, training, field)."""

    __tablename__ = "sessions"

    id: Mapped[strpk]
    kind: Mapped[SessionKind] = mapped_column(_enum(SessionKind))
    state: Mapped[SessionState] = mapped_column(_enum(SessionState), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    # the unit whose officers answer (visits: the reception unit responsible for the community)
    reception_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(64), default="")
    convener_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id"))
    item_id: Mapped[str | None] = mapped_column(String(32), index=True)
    routed_to_leader_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    recorded: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(String(64), default="")
    rating: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[created_at]
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_activity_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (Index("ix_sessions_kind_created", "kind", "created_at"),)


class Participant(Base):
    """One person's (or terminal's) presence in a session; join and leave are appended."""

    __tablename__ = "session_participants"

    id: Mapped[strpk]
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    principal_kind: Mapped[PrincipalKind] = mapped_column(_enum(PrincipalKind))
    principal_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[name200]
    role: Mapped[ParticipantRole] = mapped_column(_enum(ParticipantRole))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    admission: Mapped[AdmissionState] = mapped_column(_enum(AdmissionState))
    joined_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    leave_reason: Mapped[str] = mapped_column(String(64), default="")
    # whether the worker reported media from this participant (late joiners subscribe to it)
    publishing: Mapped[bool] = mapped_column(Boolean, default=False)
    # the hub holding this participant's WebSocket; a dead hub's participants are reaped
    hub_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    created_at: Mapped[created_at]

    # a join looks up the joiner's own rows in the session (rejoin, refusal) by principal
    __table_args__ = (
        Index("ix_session_participants_principal", "session_id", "principal_kind", "principal_id"),
        # and the present participants it may see (a training's viewers left out) by role
        Index("ix_session_participants_present", "session_id", "role", "left_at"),
    )


class SessionEvent(Base):
    """Append-only log of what happened in a session (admissions, role changes, mutes...)."""

    __tablename__ = "session_events"

    id: Mapped[intpk]
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    at: Mapped[created_at]
    actor: Mapped[str] = mapped_column(String(80), default="")
    event: Mapped[str] = mapped_column(String(40))
    participant_id: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Invite(Base):
    """A signed, expiring, revocable invitation of a third party into one session."""

    __tablename__ = "invites"

    id: Mapped[strpk]
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    role: Mapped[ParticipantRole] = mapped_column(_enum(ParticipantRole))
    display_name: Mapped[name200]
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[created_at]
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Recording(Base):
    """One recorded file of one participant, with its integrity hash."""

    __tablename__ = "recordings"

    id: Mapped[intpk]
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    participant_id: Mapped[str | None] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(500))
    codec: Mapped[str] = mapped_column(String(32), default="")
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    frames: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(24), default="open")
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: the participant's file number (0, 1, … after a rotation or a cut); None for a playback
    segment: Mapped[int | None] = mapped_column(Integer)
    #: why the file starts (the manifest's ``reason``: start, rotation, resolution, …)
    reason: Mapped[str] = mapped_column(String(24), default="", server_default="")
    #: for recovery's seekable copy, the path of the truncated original it was copied from
    derived_from: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (UniqueConstraint("path", name="uq_recordings_path"),)


class RecordingRun(Base):
    """One finalised recording run: its manifest's hash and its line in the hash chain.

    The row with the highest ``chain_index`` anchors the head of the chain: it is written in
    the same transaction as the run's file rows, so cutting the newest runs out of the
    recordings directory (files and chain lines together) shows against the database.
    """

    __tablename__ = "recording_runs"

    id: Mapped[intpk]
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    run_id: Mapped[str] = mapped_column(String(64), default="")  # "" in the older layout
    path: Mapped[str] = mapped_column(String(500))  # the manifest, relative to the root
    sha256: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64))
    previous_chain_hash: Mapped[str | None] = mapped_column(String(64))
    chain_index: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(24), default="closed")
    created_at: Mapped[created_at]

    __table_args__ = (
        UniqueConstraint("chain_hash", name="uq_recording_runs_chain_hash"),
        UniqueConstraint("chain_index", name="uq_recording_runs_chain_index"),
    )


class DutyRoster(Base):
    """The leader on duty (值班领导) of a unit for a day."""

    __tablename__ = "duty_roster"

    day: Mapped[dt.date] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))


class Announcement(Base):
    """An announcement (信息发布) pushed to terminals in the publishing unit's subtree."""

    __tablename__ = "announcements"

    id: Mapped[intpk]
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    title: Mapped[name200]
    body: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    published_at: Mapped[created_at]
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class AnnouncementReceipt(Base):
    """A terminal showed an announcement: written once, when it first did (append-only)."""

    __tablename__ = "announcement_receipts"

    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcements.id"), primary_key=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"), primary_key=True)
    shown_at: Mapped[timestamp]


class AuditEntry(Base):
    """Append-only audit log: who did what to which object, when, from where, and the outcome."""

    __tablename__ = "audit_log"

    id: Mapped[intpk]
    at: Mapped[created_at]
    actor: Mapped[str] = mapped_column(String(80))  # "account:12", "terminal:3", "invite:ab..", ""
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    remote: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="ok")  # ok | denied | failed
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_object", "object_type", "object_id"),
    )
