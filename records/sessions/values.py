"""What the session functions take and return: sessions and participants, and their transitions."""

import dataclasses
import datetime as dt
from collections.abc import Iterable

from records import models
from records.enums import (
    AdmissionState,
    ParticipantRole,
    SessionKind,
    SessionState,
)
from records.policy import SessionTarget

#: allowed session state changes
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.WAITING: frozenset(
        {SessionState.LIVE, SessionState.CANCELLED, SessionState.INTERRUPTED, SessionState.ENDED}
    ),
    SessionState.LIVE: frozenset({SessionState.ENDED, SessionState.INTERRUPTED}),
    SessionState.ENDED: frozenset(),
    SessionState.INTERRUPTED: frozenset(),
    SessionState.CANCELLED: frozenset(),
}


@dataclasses.dataclass(frozen=True, slots=True)
class ParticipantInfo:
    """One participant row."""

    id: str
    session_id: str
    principal_ref: str
    display_name: str
    role: ParticipantRole
    unit_id: int | None
    admission: AdmissionState
    joined_at: dt.datetime | None
    left_at: dt.datetime | None
    leave_reason: str
    publishing: bool = False
    hub_id: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session as the layers above see it."""

    id: str
    kind: SessionKind
    state: SessionState
    unit_id: int
    reception_unit_id: int | None
    title: str
    category: str
    convener_account_id: int | None
    terminal_id: int | None
    item_id: str | None
    routed_to_leader_id: int | None
    recorded: bool
    outcome: str
    rating: int | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    last_activity_at: dt.datetime | None
    end_reason: str
    participants: tuple[ParticipantInfo, ...] = ()

    def target(self) -> SessionTarget:
        """What the policy needs of this session."""
        return SessionTarget(
            id=self.id,
            kind=self.kind,
            unit_id=self.unit_id,
            reception_unit_id=self.reception_unit_id,
            terminal_id=self.terminal_id,
            convener_account_id=self.convener_account_id,
            routed_to_leader_id=self.routed_to_leader_id,
            participant_refs=frozenset(p.principal_ref for p in self.participants),
        )


def participant_info(r: models.Participant) -> ParticipantInfo:
    """The participant of an ORM row."""
    return ParticipantInfo(
        r.id,
        r.session_id,
        f"{r.principal_kind.value}:{r.principal_id}",
        r.display_name,
        r.role,
        r.unit_id,
        r.admission,
        r.joined_at,
        r.left_at,
        r.leave_reason,
        r.publishing,
        r.hub_id,
    )


def session_info(r: models.Session, parts: Iterable[models.Participant] = ()) -> SessionInfo:
    """The session of an ORM row, with ``parts`` as its participants."""
    return SessionInfo(
        id=r.id,
        kind=r.kind,
        state=r.state,
        unit_id=r.unit_id,
        reception_unit_id=r.reception_unit_id,
        title=r.title,
        category=r.category,
        convener_account_id=r.convener_account_id,
        terminal_id=r.terminal_id,
        item_id=r.item_id,
        routed_to_leader_id=r.routed_to_leader_id,
        recorded=r.recorded,
        outcome=r.outcome,
        rating=r.rating,
        created_at=r.created_at,
        started_at=r.started_at,
        ended_at=r.ended_at,
        last_activity_at=r.last_activity_at,
        end_reason=r.end_reason,
        participants=tuple(participant_info(p) for p in parts),
    )
