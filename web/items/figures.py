"""The records behind a report's figure: ``GET /api/stats/records?figure=...``.

Every figure of ``/api/stats`` (and of the printable report and the dashboard) links here
with its period, unit and ``by``; the answer lists the items it counts as of the report's
instant, within the reader's scope. An accusation item (Art. 30) the reader may not read is
counted in ``withheld``, not listed.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from config.errors import ValidationError
from records import accounts
from records.lifecycle import STATE_LABELS_ZH
from records.lookup import format_code
from records.report_records import FigureRecord, figure_records
from web import keys
from web.auth import remote_of
from web.items.common import iso, visible_items
from web.items.stats import _stats_query

routes = web.RouteTableDef()

#: the most records one answer lists (a district's year has about a thousand items)
MAX_RECORDS = 5000


def _record_json(r: FigureRecord) -> dict[str, Any]:
    return {
        "id": r.item_id,
        "lookup_code": format_code(r.lookup_code),
        "state": r.state.value,
        "state_label": STATE_LABELS_ZH[r.state],
        "registered_at": r.registered_at.isoformat(),
        "channel": r.channel,
        "category": r.category,
        "registering_unit_id": r.registering_unit_id,
        "handling_unit_id": r.handling_unit_id,
        "at": iso(r.at),
    }


@routes.get("/api/stats/records")
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
    return web.json_response(
        {
            "figure": figure,
            "as_of": found.as_of.isoformat(),
            "count": found.count,
            "withheld": found.count - len(shown),
            "truncated": len(shown) > MAX_RECORDS,
            "records": [_record_json(r) for r in shown[:MAX_RECORDS]],
        }
    )
