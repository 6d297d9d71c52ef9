"""Registering an item (``POST /api/items``), with possible duplicates."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from config.errors import ValidationError
from records import accounts, items, sessions
from records.enums import Role
from records.item_models import ONLINE_PLATFORMS, Channel, ItemType, OriginLevel
from records.policy import Action, UnitTarget
from web import keys, rest
from web.auth import authorize, remote_of, require_official
from web.input import choice, integer, read_json, text
from web.items.common import (
    ITEM_ID,
    MAX_ID,
    MAX_TEXT,
    boolean,
    calendar_of,
    existing_unit,
    keyring_of,
    opt_text,
    scope_units,
    visible_items,
)
from web.items.wire import Duplicate, Item, Registered
from web.rest import ID32, SESSION_ID, Bool, Choice, Int, Text, operation, reply

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


def _petitioners(data: dict[str, Any]) -> list[items.NewPetitioner]:
    raw = data.get("petitioners", [])
    if not isinstance(raw, list) or len(raw) > 50:
        raise ValidationError("field 'petitioners' must be a list of at most 50 objects")
    out: list[items.NewPetitioner] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ValidationError(f"petitioners[{i}] must be an object")
        out.append(
            items.NewPetitioner(
                name=text(entry, "name", max_len=200),
                id_number=opt_text(entry, "id_number", max_len=32),
                address=opt_text(entry, "address", max_len=300),
                phone=opt_text(entry, "phone", max_len=32),
                is_representative=bool(boolean(entry, "is_representative")),
            )
        )
    return out


def _opt_item_ref(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not ITEM_ID.match(value):
        raise ValidationError(f"field {key!r} must be an item id (32 hex digits)")
    return value


class NewPetitionerBody(rest.Request):
    """A petitioner of a new item."""

    name: Annotated[str, Text(200)]
    id_number: Annotated[str, Text(32, min_len=0)] = ""
    address: Annotated[str, Text(300, min_len=0)] = ""
    phone: Annotated[str, Text(32, min_len=0)] = ""
    is_representative: Bool = None


class RegisterBody(rest.Request):
    """``POST /api/items`` (checked field by field in the handler, between its scope checks)."""

    registering_unit_id: Annotated[int, Int(1, MAX_ID)] | None = None
    type: Annotated[ItemType, Choice(tuple(ItemType))]
    channel: Annotated[Channel, Choice(tuple(Channel))]
    request: Annotated[str, Text(MAX_TEXT)]
    facts: Annotated[str, Text(MAX_TEXT, min_len=0)] = ""
    reasons: Annotated[str, Text(MAX_TEXT, min_len=0)] = ""
    category: Annotated[str, Text(64, min_len=0)] = ""
    place: Annotated[str, Text(200, min_len=0)] = ""
    online_platform: Annotated[str, Choice(ONLINE_PLATFORMS)] | None = None
    origin_level: Annotated[OriginLevel, Choice(tuple(OriginLevel))] | None = None
    led_by_other_unit: Bool = None
    repeat: Bool = None
    urgent: Bool = None
    major: Bool = None
    confidential: Bool = None
    anonymous: Bool = None
    is_group: Bool = None
    group_size: Annotated[int, Int(1, 100_000)] | None = None
    petitioners: Annotated[list[NewPetitionerBody], Field(max_length=50)] = []
    agent_name: Annotated[str, Text(200, min_len=0)] = ""
    agent_authorisation: Annotated[str, Text(200, min_len=0)] = ""
    subject_unit_id: Annotated[int, Int(1, MAX_ID)] | None = None
    national_number: Annotated[str, Text(64, min_len=0)] = ""
    session_id: SESSION_ID | None = None
    duplicate_of_id: ID32 | None = None
    reviews_item_id: ID32 | None = None


@routes.post("/api/items")
@operation(
    "Register an item (any channel); possible duplicates are returned",
    tag="items",
    body=RegisterBody,
    response=Registered,
    status=201,
)
async def register(request: web.Request) -> web.Response:
    """Register an item from any channel; answers the item and possible duplicates."""
    p = require_official(request)
    data = await read_json(request)
    unit_id = integer(data, "registering_unit_id", lo=1, hi=MAX_ID, required=False)
    unit_id = existing_unit(request, unit_id if unit_id is not None else p.unit_id or 0)
    await authorize(request, Action.REGISTER_ITEM, UnitTarget(unit_id))
    subject = integer(data, "subject_unit_id", lo=1, hi=MAX_ID, required=False)
    origin = choice(data, "origin_level", OriginLevel, required=False)
    session_id = opt_text(data, "session_id", max_len=32)
    petitioners = _petitioners(data)
    new = items.NewItem(
        registering_unit_id=unit_id,
        type=ItemType(str(choice(data, "type", ItemType))),
        channel=Channel(str(choice(data, "channel", Channel))),
        request=text(data, "request", max_len=MAX_TEXT),
        facts=text(data, "facts", max_len=MAX_TEXT, required=False),
        reasons=text(data, "reasons", max_len=MAX_TEXT, required=False),
        category=opt_text(data, "category", max_len=64),
        place=opt_text(data, "place", max_len=200),
        online_platform=opt_text(data, "online_platform", max_len=64),
        origin_level=OriginLevel(origin) if origin else None,
        led_by_other_unit=bool(boolean(data, "led_by_other_unit")),
        repeat=bool(boolean(data, "repeat")),
        urgent=bool(boolean(data, "urgent")),
        major=bool(boolean(data, "major")),
        confidential=boolean(data, "confidential", default=None),
        anonymous=bool(boolean(data, "anonymous")),
        is_group=bool(boolean(data, "is_group")),
        group_size=integer(data, "group_size", lo=1, hi=100_000, required=False),
        petitioners=petitioners,
        agent_name=opt_text(data, "agent_name"),
        agent_authorisation=opt_text(data, "agent_authorisation"),
        agent_account_id=p.account_id if p.has(Role.AGENT) else None,
        subject_unit_id=existing_unit(request, subject) if subject is not None else None,
        national_number=opt_text(data, "national_number", max_len=64),
        session_id=session_id,
        duplicate_of_id=_opt_item_ref(data, "duplicate_of_id"),
        reviews_item_id=_opt_item_ref(data, "reviews_item_id"),
    )
    store = request.app[keys.STORE]
    if session_id is not None:
        if not session_id.isalnum():
            raise ValidationError(f"session {session_id!r} not found")
        async with store.transaction() as tx:
            s = await sessions.get_session(tx, session_id)
        await authorize(request, Action.MODERATE_SESSION, s.target())
    first = petitioners[0] if petitioners else None
    async with store.transaction() as tx:
        for ref in (new.duplicate_of_id, new.reviews_item_id):
            if ref is not None:
                await items.get_item(tx, ref)
        candidates = await items.find_possible_duplicates(
            tx,
            keyring=keyring_of(request),
            id_number=first.id_number if first else None,
            name=first.name if first else None,
            phone=first.phone if first else None,
            request_text=new.request,
            unit_ids=scope_units(request, p, None),
        )
        item = await items.register_item(
            tx, calendar_of(request), new, keyring=keyring_of(request), account_id=p.account_id
        )
        if item.confidential and p.account_id is not None:
            # Art. 30: nobody but handlers sees it, so the registering official is the first.
            item = await items.set_handler(tx, item.id, p.account_id)
        if session_id is not None:
            await sessions.update_session(tx, session_id, item_id=item.id)
            await sessions.log_event(
                tx, session_id, "item_linked", actor=p.ref, data={"item": item.id}
            )
        await accounts.audit(tx, p.ref, "register_item", "item", item.id, remote=remote_of(request))
    visible = await visible_items(request, p, [c.item_id for c in candidates])
    return reply(
        Registered(
            item=Item.of(item, calendar_of(request)),
            possible_duplicates=[Duplicate.of(c) for c in candidates if c.item_id in visible],
        ),
        status=201,
    )
