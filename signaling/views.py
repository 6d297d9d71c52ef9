"""What clients see of sessions and participants: the JSON shapes and the role groups."""

from __future__ import annotations

from typing import Any

from records import sessions
from records.enums import ParticipantRole, SessionKind, SessionState

CLOSED_STATES = frozenset({SessionState.ENDED, SessionState.CANCELLED, SessionState.INTERRUPTED})


def hidden_roles(kind: SessionKind) -> tuple[ParticipantRole, ...]:
    """Roles a room snapshot leaves out: a training shows its viewers only to themselves.

    Never loading them keeps a join into a training of thousands from reading thousands of rows.
    """
    return (ParticipantRole.VIEWER,) if kind is SessionKind.TRAINING else ()


def participant_json(p: sessions.ParticipantInfo) -> dict[str, Any]:
    """A participant as events and snapshots show it."""
    return {
        "id": p.id,
        "name": p.display_name,
        "role": p.role.value,
        "unit_id": p.unit_id,
        "admission": p.admission.value,
        "joined_at": p.joined_at.isoformat() if p.joined_at else None,
        "publishing": p.publishing,
    }


def session_brief(s: sessions.SessionInfo) -> dict[str, Any]:
    """A session as replies and snapshots show it."""
    return {
        "id": s.id,
        "kind": s.kind.value,
        "state": s.state.value,
        "unit_id": s.unit_id,
        "title": s.title,
        "category": s.category,
        "recorded": s.recorded,
        "item_id": s.item_id,
        "created_at": s.created_at.isoformat(),
    }
