"""The audit log: who did what, appended, read within the reader's units."""

import dataclasses
import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, literal, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import RecordsError
from records import models
from records.item_models import BacklogCase, ItemCoHandler, ItemRow

# ---- audit log -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit entry."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    remote: str
    outcome: str
    detail: dict[str, Any]


async def audit(
    db: AsyncSession,
    actor: str,
    action: str,
    object_type: str = "",
    object_id: str = "",
    *,
    remote: str = "",
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the audit log (the caller commits)."""
    try:
        db.add(
            models.AuditEntry(
                actor=actor[:80],
                action=action[:64],
                object_type=object_type[:32],
                object_id=str(object_id)[:64],
                remote=remote[:64],
                outcome=outcome,
                detail=detail or {},
            )
        )
        await db.flush()
    except SQLAlchemyError as exc:
        raise RecordsError(f"audit write failed: {exc}") from exc


async def audit_entries(
    db: AsyncSession,
    *,
    action: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    limit: int = 100,
    unit_ids: Collection[int] | None = None,
) -> Sequence[AuditRecord]:
    """The newest audit entries matching the filters.

    ``unit_ids`` scopes the answer to a part of the org tree (None: every entry): an entry is
    in it when its object belongs to one of those units (a session of that unit or received
    there, an item registered, handled or co-handled there, the unit itself, an account,
    terminal or announcement of it, a recording, invite or backlog case of such a session or
    item) or when its actor does (an account or terminal of the unit, an invite to one of its
    sessions).
    """
    q = select(models.AuditEntry).order_by(models.AuditEntry.id.desc()).limit(min(limit, 1000))
    if action is not None:
        q = q.where(models.AuditEntry.action == action)
    if object_id is not None:
        q = q.where(models.AuditEntry.object_id == object_id)
    if actor is not None:
        q = q.where(models.AuditEntry.actor == actor)
    if unit_ids is not None:
        q = q.where(_audit_scope(sorted(set(unit_ids))))
    rows = (await db.scalars(q)).all()
    return [
        AuditRecord(
            r.id, r.at, r.actor, r.action, r.object_type, r.object_id, r.remote, r.outcome, r.detail
        )
        for r in rows
    ]


def _audit_scope(units: list[int]) -> ColumnElement[bool]:
    """The audit entries whose object or actor lies in ``units`` (see :func:`audit_entries`)."""
    entry = models.AuditEntry
    ids_as_text = [str(u) for u in units]
    sessions_in = select(models.Session.id).where(
        or_(models.Session.unit_id.in_(units), models.Session.reception_unit_id.in_(units))
    )
    items_in = select(ItemRow.id).where(
        or_(
            ItemRow.registering_unit_id.in_(units),
            ItemRow.handling_unit_id.in_(units),
            ItemRow.id.in_(select(ItemCoHandler.item_id).where(ItemCoHandler.unit_id.in_(units))),
        )
    )
    invites_in = select(models.Invite.id).where(models.Invite.session_id.in_(sessions_in))

    def object_in(kind: str, ids: Any) -> ColumnElement[bool]:
        return and_(entry.object_type == kind, entry.object_id.in_(ids))

    def as_text(column: Any) -> Any:
        return cast(column, String)

    return or_(
        object_in("session", sessions_in),
        object_in("item", items_in),
        object_in("unit", ids_as_text),
        object_in(
            "account", select(as_text(models.Account.id)).where(models.Account.unit_id.in_(units))
        ),
        # failed logins name the account by its username
        object_in(
            "account", select(models.Account.username).where(models.Account.unit_id.in_(units))
        ),
        object_in(
            "terminal",
            select(as_text(models.Terminal.id)).where(models.Terminal.unit_id.in_(units)),
        ),
        object_in("invite", invites_in),
        object_in(
            "recording",
            select(as_text(models.Recording.id)).where(
                models.Recording.session_id.in_(sessions_in)
            ),
        ),
        object_in(
            "announcement",
            select(as_text(models.Announcement.id)).where(models.Announcement.unit_id.in_(units)),
        ),
        object_in(
            "backlog", select(as_text(BacklogCase.id)).where(BacklogCase.item_id.in_(items_in))
        ),
        entry.actor.in_(
            select(literal("account:") + as_text(models.Account.id)).where(
                models.Account.unit_id.in_(units)
            )
        ),
        entry.actor.in_(
            select(literal("terminal:") + as_text(models.Terminal.id)).where(
                models.Terminal.unit_id.in_(units)
            )
        ),
        entry.actor.in_(
            select(literal("invite:") + models.Invite.id).where(
                models.Invite.session_id.in_(sessions_in)
            )
        ),
    )
