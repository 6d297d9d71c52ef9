"""The records behind a report's figure: ``GET /api/stats/records?figure=...``.

Every figure of ``/api/stats`` (and of the printable report and the dashboard) links here
with its period, unit and ``by``; the answer lists the items it counts as of the report's
instant, within the reader's scope. An accusation item (Art. 30) the reader may not read is
counted in ``withheld``, not listed.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from config.errors import ValidationError
from records import accounts
from records.lifecycle import STATE_LABELS_ZH, ItemState
from records.lookup import format_code
from records.report_records import FigureRecord, figure_records
from web import keys
from web.auth import remote_of
from web.items.common import visible_items
from web.items.stats import StatsQuery, _stats_query
from web.rest import ID32, LOOKUP_CODE, DateTime, Wire, operation, reply

routes = web.RouteTableDef()

#: the most records one answer lists (a district's year has about a thousand items)
MAX_RECORDS = 5000


class FigureQuery(StatsQuery):
    """A report's period, unit and ``by``, and the figure whose records are asked for."""

    figure: Annotated[
        str,
        Field(min_length=1, max_length=200, description="concluded, channel:letter, ..."),
    ]


class Record(Wire):
    """An item a figure counts; ``at``: the moment it was counted (concluded, routed ...)."""

    id: ID32
    lookup_code: LOOKUP_CODE
    state: ItemState
    state_label: str
    registered_at: DateTime
    channel: str
    category: str | None
    registering_unit_id: int
    handling_unit_id: int | None
    at: DateTime | None

    @classmethod
    def of(cls, r: FigureRecord) -> Record:
        """The wire form of ``r``."""
        return cls(
            id=r.item_id,
            lookup_code=format_code(r.lookup_code),
            state=r.state,
            state_label=STATE_LABELS_ZH[r.state],
            registered_at=r.registered_at,
            channel=r.channel,
            category=r.category,
            registering_unit_id=r.registering_unit_id,
            handling_unit_id=r.handling_unit_id,
            at=r.at,
        )


class FigureRecords(Wire):
    """``GET /api/stats/records``."""

    figure: str
    as_of: DateTime
    count: int
    withheld: int
    truncated: bool
    records: list[Record]


@routes.get("/api/stats/records")
@operation(
    "The records a report figure counts, as of the report's instant (in scope; confidential "
    "items the reader may not read are counted in withheld)",
    tag="stats",
    response=FigureRecords,
    query=FigureQuery,
)
async def stats_records(request: web.Request) -> web.Response:
    """The items (or routings, supervisions) a figure counts, as of the report's instant."""
    figure = request.query.get("figure", "")
    if not figure or len(figure) > 200:
        raise ValidationError("query parameter 'figure' is required (e.g. concluded)")
    p, q = await _stats_query(request)
    async with request.app[keys.STORE].transaction() as tx:
        found = await figure_records(
            tx, start=q.start, end=q.end, figure=figure, unit_ids=q.unit_ids, by=q.by
        )
        await accounts.audit(
            tx,
            p.ref,
            "view_stats_records",
            "unit",
            str(q.unit_id or ""),
            remote=remote_of(request),
            detail={"figure": figure, "start": q.start.isoformat(), "count": found.count},
        )
    confidential = [r.item_id for r in found.records if r.confidential]
    visible = await visible_items(request, p, confidential) if confidential else set()
    shown = [r for r in found.records if not r.confidential or r.item_id in visible]
    return reply(
        FigureRecords(
            figure=figure,
            as_of=found.as_of,
            count=found.count,
            withheld=found.count - len(shown),
            truncated=len(shown) > MAX_RECORDS,
            records=[Record.of(r) for r in shown[:MAX_RECORDS]],
        )
    )
