"""A kiosk says it put an announcement on its screen (信息发布送达)."""

from __future__ import annotations

from config import errors
from records import receipts
from records.enums import PrincipalKind
from signaling.context import Context
from signaling.messages import AnnouncementShown
from signaling.registry import Reply, command


@command(AnnouncementShown)
async def announcement_shown(ctx: Context, req: AnnouncementShown) -> Reply:
    """Write the terminal's receipt of an announcement (the first time only; append-only).

    Only terminals send it, and only for announcements of their unit or a unit above it.
    Answers ``{"recorded": bool}``: ``False`` when it was written before.
    """
    principal = ctx.principal
    if principal.kind is not PrincipalKind.TERMINAL or principal.unit_id is None:
        raise errors.AccessDenied("announcement.shown is for community terminals")
    try:
        async with ctx.tx() as tx:
            recorded = await receipts.record_shown(
                tx,
                req.announcement,
                int(principal.id),
                publisher_units=ctx.tree.ancestors(principal.unit_id),
            )
    except errors.Conflict:
        recorded = False  # another connection of the same terminal wrote it at this moment
    return {"recorded": recorded}
