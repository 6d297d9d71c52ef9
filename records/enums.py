"""The enumerations of the domain; their values are what the database and the wire carry."""

from __future__ import annotations

import enum


class UnitLevel(enum.StrEnum):
    """The four levels of the org tree, top to bottom."""

    DISTRICT = "district"  # 区
    DEPARTMENT = "department"  # 区级部门
    SUBDISTRICT = "subdistrict"  # 街道/镇
    COMMUNITY = "community"  # 社区/村

    @property
    def rank(self) -> int:
        """0 for the district; departments and sub-districts are both rank 1."""
        return {"district": 0, "department": 1, "subdistrict": 1, "community": 2}[self.value]


class Role(enum.StrEnum):
    """Roles an official account can hold (DOMAIN.md)."""

    AGENT = "agent"  # 信访代理
    RECEPTION = "reception"  # 接访人员
    LEADER = "leader"  # 领导
    MEDIATOR = "mediator"
    TRAINER = "trainer"
    AUDITOR = "auditor"
    ADMIN = "admin"


class PrincipalKind(enum.StrEnum):
    """Who is acting: a person with an account, a community terminal, or an invite holder."""

    ACCOUNT = "account"
    TERMINAL = "terminal"
    INVITE = "invite"


class SessionKind(enum.StrEnum):
    """Session kinds of DOMAIN.md."""

    VISIT = "visit"
    CALL = "call"
    CONFERENCE = "conference"
    MEDIATION = "mediation"
    TRAINING = "training"
    FIELD = "field"


class SessionState(enum.StrEnum):
    """waiting → live → ended; interrupted by a crash; cancelled before it went live."""

    WAITING = "waiting"
    LIVE = "live"
    ENDED = "ended"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"


class ParticipantRole(enum.StrEnum):
    """The role someone has inside one session."""

    RESIDENT = "resident"  # the community terminal side of a visit
    OFFICER = "officer"  # reception officer
    CONVENER = "convener"
    MEMBER = "member"  # conference / call participant
    MEDIATOR = "mediator"
    PARTY = "party"
    LAWYER = "lawyer"
    COUNSELLOR = "counsellor"
    SOCIAL_WORKER = "social_worker"
    OFFICIAL = "official"
    TRAINER = "trainer"
    VIEWER = "viewer"
    SPEAKER = "speaker"  # a promoted training viewer
    FIELD = "field"


class AdmissionState(enum.StrEnum):
    """Lobby state of a participant."""

    LOBBY = "lobby"
    ADMITTED = "admitted"
    REFUSED = "refused"
    REMOVED = "removed"
