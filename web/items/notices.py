"""Written notices (acceptance, non-acceptance, extension, opinion) as printable HTML."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Annotated

from aiohttp import web

from config.errors import NotFound
from records import accounts, items
from records.deadlines import local_date
from records.lifecycle import (
    ARTICLES,
    EventType,
    ItemState,
)
from records.lookup import format_code
from records.policy import Action
from web import keys
from web.auth import remote_of
from web.items.common import (
    cn_date,
    load_item,
    unit_name,
)
from web.rest import Choice, ItemPath, operation
from web.templates import render

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


NOTICE_KINDS = ("acceptance", "non-acceptance", "extension", "opinion")
_OPINION_EVENTS = {
    EventType.ISSUE_OPINION: (
        "信访事项处理意见书",
        "如对本处理意见不服，可以自收到本意见书之日起30日内，请求原办理机关的上一级机关复查。",
    ),
    EventType.ISSUE_REVIEW_OPINION: (
        "信访事项复查意见书",
        "如对本复查意见不服，可以自收到本意见书之日起30日内，向复查机关的上一级机关请求复核。",
    ),
    EventType.ISSUE_REREVIEW_OPINION: (
        "信访事项复核意见书",
        "本复核意见为最终意见。您以同一事实和理由提出的信访事项，信访工作机构和其他机关、单位"
        "不再受理。",
    ),
}


def notice_html(
    kind: str,
    item: items.Item,
    entries: Sequence[items.ItemHistoryEntry],
    unit_name: Callable[[int | None], str],
    approver_name: str = "",
) -> str:
    """The printable written notice of ``kind`` for the item, from its history.

    Raises:
        NotFound: the item has no such notice yet (e.g. not accepted).
    """

    def last(*types: EventType) -> items.ItemHistoryEntry:
        for e in reversed(entries):
            if e.type in types:
                return e
        raise NotFound(f"item {item.id} has no {kind} notice: no {types[0].value} in its history")

    registered_on = cn_date(local_date(item.registered_at))
    holder = unit_name(item.handling_unit_id or item.registering_unit_id)
    code = format_code(item.lookup_code)
    names = "、".join(pt.name for pt in item.petitioners)
    recipient = "信访人" if item.anonymous or not names else names
    values: dict[str, object] = {
        "lookup_code": code,
        "registered_on": registered_on,
        "request": item.request,
        "issuer": holder,
    }
    articles = ARTICLES[item.rule_set]
    if kind == "acceptance":
        e = last(EventType.ACCEPT)
        title = "信访事项受理告知书"
        accepted = local_date(e.at)
        due = item.due_on if item.state is ItemState.ACCEPTED else None
        values |= {
            "accepted_on": cn_date(accepted),
            "opinion_days": 60,
            "due_on": cn_date(due) if due else cn_date(accepted + dt.timedelta(days=60)),
            "article": articles["opinion"],
        }
        body = "notice_acceptance.html"
        issued = accepted
    elif kind == "non-acceptance":
        e = last(EventType.NOT_ACCEPT)
        title = "信访事项不予受理告知书"
        values |= {
            "reason": e.reason,
            "advice": "对依法应当通过诉讼、仲裁、行政复议等法定途径解决的请求，请依照有关法律、"
            "行政法规规定的程序向有关机关提出。",
        }
        body = "notice_non_acceptance.html"
        issued = local_date(e.at)
    elif kind == "extension":
        e = last(EventType.EXTEND)
        title = "信访事项延期办理告知书"
        accepted_e = last(EventType.ACCEPT)
        values |= {
            "accepted_on": cn_date(local_date(accepted_e.at)),
            "approver": approver_name or str(e.data.get("approved_by", "")),
            "days": e.data.get("days", ""),
            "due_on": cn_date(item.due_on) if item.due_on else "（见办理意见）",
            "reason": e.reason,
            "article": articles["opinion"],
        }
        body = "notice_extension.html"
        issued = local_date(e.at)
    elif kind == "opinion":
        e = last(*_OPINION_EVENTS)
        title, advice = _OPINION_EVENTS[e.type]
        values |= {
            "title": title,
            "facts": item.facts or "（见卷宗）",
            "decision": e.data.get("decision", ""),
            "legal_basis": e.data.get("legal_basis", ""),
            "review_advice": advice,
        }
        body = "notice_opinion.html"
        issued = local_date(e.at)
    else:
        raise NotFound(f"no notice kind {kind!r}; kinds: {', '.join(NOTICE_KINDS)}")
    # The body template sees the same values as the page around it.
    return render(
        "notice.html",
        values
        | {
            "kind": kind,
            "title": title,
            "lookup_code": code,
            "recipient": recipient,
            "body": body,
            "issuer": holder,
            "issued_on": cn_date(issued),
        },
    )


class NoticePath(ItemPath):
    """``{item_id}`` and the notice's ``{kind}``."""

    kind: Annotated[str, Choice(NOTICE_KINDS)]


@routes.get("/api/items/{item_id}/notices/{kind}")
@operation(
    "A written notice as printable HTML (Chinese), with the lookup code",
    tag="items",
    path=NoticePath,
    media={"text/html": {"type": "string"}},
)
async def notice(request: web.Request) -> web.Response:
    """A written notice (acceptance, non-acceptance, extension, opinion) as printable HTML."""
    kind = request.match_info["kind"]
    if kind not in NOTICE_KINDS:
        raise NotFound(f"no notice kind {kind[:40]!r}; kinds: {', '.join(NOTICE_KINDS)}")
    p, item = await load_item(request, Action.VIEW_ITEM)
    store = request.app[keys.STORE]
    async with store.transaction() as tx:
        entries = await items.item_history(tx, item.id)
        approver = ""
        ext = [e for e in entries if e.type is EventType.EXTEND]
        if kind == "extension" and ext:
            approver_id = ext[-1].data.get("approved_by")
            if isinstance(approver_id, int):
                approver = (await accounts.get_account(tx, approver_id)).display_name
        await accounts.audit(
            tx,
            p.ref,
            "item_notice",
            "item",
            item.id,
            remote=remote_of(request),
            detail={"kind": kind},
        )

    def name(unit_id: int | None) -> str:
        return unit_name(request, unit_id)

    body = await asyncio.to_thread(notice_html, kind, item, entries, name, approver)
    return web.Response(text=body, content_type="text/html", charset="utf-8")
