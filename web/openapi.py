"""The OpenAPI 3.1 document of every ``/api`` route (served at ``/api/openapi.json``).

Written by hand from the handlers in ``web/api.py`` and the ``web/items/`` package (the
lifecycle action routes are generated from :data:`web.items.actions.ACTIONS`, the same table
the routes come from). This module serves the document itself; ``web.items`` never imports
it. A test compares the document with the app's router, so a route added without a
description fails the build, and a fuzzer (schemathesis) checks that answers match it.

Every error answer is ``{"error": {"code", "message"}}`` (the ``default`` response); an
illegal lifecycle transition adds ``state`` and ``allowed_actions``.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from aiohttp import web

from records.enums import ParticipantRole, Role, SessionKind, SessionState
from records.item_models import (
    ONLINE_PLATFORMS,
    Channel,
    ItemType,
    OriginLevel,
    Outcome,
    VisitKind,
)
from records.items import ATTACHMENT_TYPES, MAX_ATTACHMENT_BYTES
from records.lifecycle import EventType, ItemState
from web.items.actions import ACTIONS
from web.items.common import MAX_ID, MAX_TEXT
from web.items.notices import NOTICE_KINDS

__all__ = ["build_document", "routes"]

routes = web.RouteTableDef()

Schema = dict[str, Any]

ERROR_DESCRIPTION = (
    "Error: 401 not signed in, 403 refused by the policy or CSRF, 404 not found (or a failed "
    "evaluation), 409 conflict or illegal transition, 415 not JSON, 422 invalid input, "
    "429 rate limited."
)


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    if "$ref" in schema:
        return {"oneOf": [schema, {"type": "null"}]}
    out = dict(schema)
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def _obj(
    props: dict[str, Schema], *, required: list[str] | None = None, extra: bool = False
) -> Schema:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": extra,
    }


def _enum(values: Any) -> Schema:
    return {"type": "string", "enum": [getattr(v, "value", v) for v in values]}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
BOOL: Schema = {"type": "boolean"}
DATE: Schema = {"type": "string", "format": "date"}
DATETIME: Schema = {"type": "string", "format": "date-time"}
ID32: Schema = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
UNIT_ID: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
LOOKUP_CODE: Schema = {"type": "string", "pattern": "^[2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5}$"}
NONBLANK = r"\S"


def _text(max_len: int, *, min_len: int = 1) -> Schema:
    out: Schema = {"type": "string", "maxLength": max_len}
    if min_len:
        out |= {"minLength": min_len, "pattern": NONBLANK}
    return out


def _schemas() -> dict[str, Schema]:
    rate = _obj({"numerator": INT, "denominator": INT, "percent": _nullable({"type": "number"})})
    breakdown = _obj(
        {
            "name": STR,
            "counts": {"type": "object", "additionalProperties": INT},
            "sum": INT,
            "total": INT,
            "total_name": STR,
            "mismatch": _nullable(STR),
        }
    )
    pair = {
        "type": "array",
        "prefixItems": [STR, INT],
        "minItems": 2,
        "maxItems": 2,
    }
    yoy = _nullable({"type": "number"})
    visit_kind = _obj(
        {
            "kind": _enum(VisitKind),
            "label": STR,
            "batches": INT,
            "persons": INT,
            "collective_batches": INT,
            "collective_persons": INT,
            "previous": _obj({"batches": INT, "persons": INT}),
            "change_percent": _obj({"batches": yoy, "persons": yoy}),
        }
    )
    petitioner = _obj(
        {
            "position": INT,
            "name": STR,
            "id_number": _nullable(STR),
            "address": _nullable(STR),
            "phone": _nullable(STR),
            "is_representative": BOOL,
        }
    )
    due = _nullable(
        _obj(
            {
                "on": DATE,
                "what": _nullable(STR),
                "article": _nullable(STR),
                # the date lies in a year without an official holiday notice (national rules)
                "provisional": BOOL,
            }
        )
    )
    summary_props: dict[str, Schema] = {
        "id": ID32,
        "lookup_code": LOOKUP_CODE,
        "state": _enum(ItemState),
        "state_label": STR,
        "type": _enum(ItemType),
        "channel": _enum(Channel),
        "category": _nullable(STR),
        "urgent": BOOL,
        "major": BOOL,
        "confidential": BOOL,
        "anonymous": BOOL,
        "is_group": BOOL,
        "registering_unit_id": INT,
        "handling_unit_id": _nullable(INT),
        "registered_at": DATETIME,
        "due": due,
        "petitioners": {"type": "array", "items": _ref("Petitioner")},
        "request": STR,
    }
    item_props = summary_props | {
        "national_number": _nullable(STR),
        "rule_set": _enum(["2022", "2005"]),
        "version": INT,
        "place": _nullable(STR),
        "facts": STR,
        "reasons": STR,
        "online_platform": _nullable(STR),
        "origin_level": _nullable(_enum(OriginLevel)),
        "led_by_other_unit": BOOL,
        "repeat": BOOL,
        "group_size": _nullable(INT),
        "agent_name": _nullable(STR),
        "agent_authorisation": _nullable(STR),
        "subject_unit_id": _nullable(INT),
        "co_handling_unit_ids": {"type": "array", "items": INT},
        "handler_account_ids": {"type": "array", "items": INT},
        "recused_account_ids": {"type": "array", "items": INT},
        "session_id": _nullable(STR),
        "duplicate_of_id": _nullable(ID32),
        "reviews_item_id": _nullable(ID32),
        "outcome": _nullable(_enum(Outcome)),
        "carried_out": _nullable(BOOL),
        "resolved": BOOL,
        "accepted_on_time": _nullable(BOOL),
        "opinion_on_time": _nullable(BOOL),
        "concluded_at": _nullable(DATETIME),
        "evaluation": _obj(
            {
                "acceptance": _nullable(BOOL),
                "handling": _nullable(BOOL),
                "acceptance_recorded_by": _nullable(INT),
                "handling_recorded_by": _nullable(INT),
            }
        ),
        "allowed_actions": {"type": "array", "items": _enum(a.name for a in ACTIONS)},
    }
    item_detail = _obj(
        item_props
        | {
            "backlog_case_id": _nullable(INT),
            "may_supervise": BOOL,
            "supervisions": {
                "type": "array",
                "items": _obj(
                    {
                        "id": INT,
                        "unit_id": INT,
                        "unit_name": STR,
                        "reason": STR,
                        "due_on": _nullable(DATE),
                        "at": DATETIME,
                    }
                ),
            },
            "unit_names": {
                "type": "object",
                "additionalProperties": STR,
                "description": "unit id → name, for the units the item names",
            },
        },
        required=[*item_props],
    )
    case_props: dict[str, Schema] = {
        "id": INT,
        "item_id": ID32,
        "leader_account_id": INT,
        "team": STR,
        "resolution_plan": STR,
        "stability_plan": STR,
        "ledger": STR,
        "unit_ids": {"type": "array", "items": INT},
        "flagged_at": DATETIME,
        "plan_due_on": _nullable(DATE),
        "closed_at": _nullable(DATETIME),
        "closed_by": _nullable(INT),
    }
    missing = {
        "type": "object",
        "additionalProperties": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
        },
    }
    session_props: dict[str, Schema] = {
        "id": STR,
        "kind": _enum(SessionKind),
        "state": _enum(SessionState),
        "unit_id": INT,
        "reception_unit_id": _nullable(INT),
        "title": STR,
        "category": STR,
        "item_id": _nullable(STR),
        "recorded": BOOL,
        "outcome": STR,
        "rating": _nullable(INT),
        "created_at": DATETIME,
        "started_at": _nullable(DATETIME),
        "ended_at": _nullable(DATETIME),
        "end_reason": STR,
    }
    participant = _obj(
        {
            "id": STR,
            "name": STR,
            "role": _enum(ParticipantRole),
            "unit_id": _nullable(INT),
            "admission": STR,
            "joined_at": _nullable(DATETIME),
            "left_at": _nullable(DATETIME),
            "leave_reason": STR,
        }
    )
    recording = _obj(
        {
            "id": INT,
            "participant_id": _nullable(STR),
            "segment": _nullable(INT),
            "reason": STR,
            "derived_from": _nullable(INT),
            "codec": STR,
            "started_at": _nullable(DATETIME),
            "ended_at": _nullable(DATETIME),
            "frames": _nullable(INT),
            "bytes": _nullable(INT),
            "sha256": _nullable(STR),
            "state": STR,
            "deleted": BOOL,
            "url": STR,
        }
    )
    return {
        "Error": _obj(
            {
                "error": _obj(
                    {
                        "code": STR,
                        "message": STR,
                        "state": _enum(ItemState),
                        "allowed_actions": {"type": "array", "items": STR},
                    },
                    required=["code", "message"],
                )
            }
        ),
        "Ok": _obj({"ok": {"const": True}}),
        "Petitioner": petitioner,
        "ItemSummary": _obj(summary_props),
        "Item": _obj(item_props),
        "ItemDetail": item_detail,
        "Duplicate": _obj(
            {
                "item_id": ID32,
                "lookup_code": LOOKUP_CODE,
                "state": _enum(ItemState),
                "registered_at": DATETIME,
                "score": {"type": "number"},
                "reasons": {"type": "array", "items": STR},
            }
        ),
        "Registered": _obj(
            {
                "item": _ref("Item"),
                "possible_duplicates": {"type": "array", "items": _ref("Duplicate")},
            }
        ),
        "HistoryEntry": _obj(
            {
                "seq": INT,
                "at": DATETIME,
                "account_id": _nullable(INT),
                "account_name": _nullable(STR),
                "type": _enum(EventType),
                "from_state": _nullable(_enum(ItemState)),
                "to_state": _enum(ItemState),
                "reason": STR,
                "data": {"type": "object"},
            }
        ),
        "DueItem": _obj(
            {
                "item_id": ID32,
                "lookup_code": LOOKUP_CODE,
                "state": _enum(ItemState),
                "due_unit_id": _nullable(INT),
                "handling_unit_id": _nullable(INT),
                "due_on": DATE,
                "due_what": STR,
                "due_article": STR,
                "due_provisional": BOOL,
                "days_left": INT,
                "confidential": BOOL,
            }
        ),
        "DueList": _obj({"today": DATE, "items": {"type": "array", "items": _ref("DueItem")}}),
        "PublicProgress": _obj(
            {
                "lookup_code": LOOKUP_CODE,
                "state": _enum(ItemState),
                "label": STR,
                "registered_on": DATE,
                "due_on": _nullable(DATE),
                "due_provisional": BOOL,
                "steps": {
                    "type": "array",
                    "items": _obj({"on": DATE, "state": _enum(ItemState), "label": STR}),
                },
                "can_evaluate_acceptance": BOOL,
                "can_evaluate_handling": BOOL,
            }
        ),
        "BacklogCase": _obj(case_props),
        "Attachment": _obj(
            {
                "id": INT,
                "item_id": ID32,
                "name": STR,
                "content_type": _enum(sorted({t for t, _ in ATTACHMENT_TYPES.values()})),
                "size": {"type": "integer", "minimum": 1, "maximum": MAX_ATTACHMENT_BYTES},
                "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "added_by": _nullable(INT),
                "added_at": DATETIME,
            }
        ),
        "BacklogAttention": _obj(
            {
                "case_id": INT,
                "item_id": ID32,
                "lookup_code": LOOKUP_CODE,
                "unit_id": INT,
                "unit_name": STR,
                "leader_account_id": INT,
                "plan_due_on": _nullable(DATE),
                "plan_overdue": BOOL,
                "days_overdue": {"type": "integer", "minimum": 0},
                "missing_months": {
                    "type": "array",
                    "items": {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
                },
            }
        ),
        "BacklogCaseSummary": _obj(
            case_props
            | {
                "lookup_code": LOOKUP_CODE,
                "state": _enum(ItemState),
                "state_label": STR,
                "due_on": _nullable(DATE),
                "request": STR,
                "missing_months": missing,
                "missing_count": INT,
            }
        ),
        "BacklogCaseDetail": _obj(
            case_props
            | {
                "lookup_code": LOOKUP_CODE,
                "state": _enum(ItemState),
                "entries": {"type": "array", "items": _ref("ProgressEntry")},
                "missing_months": missing,
                "resolved": {"type": "boolean"},
                "may_close": {"type": "boolean"},
                "closed_by_name": _nullable(STR),
            }
        ),
        "ProgressEntry": _obj(
            {
                "id": INT,
                "case_id": INT,
                "unit_id": INT,
                "month": {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
                "text": STR,
                "account_id": _nullable(INT),
                "written_at": DATETIME,
            }
        ),
        "Rate": rate,
        "Breakdown": breakdown,
        "Report": _obj(
            {
                "start": DATE,
                "end": DATE,
                "unit_count": _nullable(INT),
                "unit_id": _nullable(INT),
                "by": _enum(["registering", "handling"]),
                # figure key (concluded, channel:letter ...) -> GET /api/stats/records URL
                "links": {"type": "object", "additionalProperties": STR},
                "received": INT,
                "concluded": INT,
                "in_progress": INT,
                "closed_otherwise": INT,
                "transfers": INT,
                "assignments": INT,
                "rates": _obj(
                    {
                        k: _ref("Rate")
                        for k in (
                            "completion",
                            "timely_acceptance",
                            "on_time_completion",
                            "satisfaction",
                            "participation",
                        )
                    }
                ),
                "from_above": {
                    "type": "array",
                    "items": _obj(
                        {
                            "level": _enum(OriginLevel),
                            "assigned": INT,
                            "led_by_other_unit": INT,
                            "resolved": INT,
                            "resolution_rate": _ref("Rate"),
                        }
                    ),
                },
                **{
                    k: _ref("Breakdown")
                    for k in (
                        "by_channel",
                        "by_online_platform",
                        "by_type",
                        "by_state",
                        "by_category",
                        "by_subject_unit",
                    )
                },
                "top_categories": {"type": "array", "items": pair},
                "top_subject_units": {"type": "array", "items": pair},
                "mismatches": {"type": "array", "items": STR},
                "sessions": {
                    "type": "object",
                    "properties": {
                        key: {"type": "object", "additionalProperties": {"type": "integer"}}
                        for key in (
                            "by_kind",
                            "by_kind_and_level",
                            "training_attendance",
                            "visit_ratings",
                        )
                    }
                    | {
                        key: {"type": "integer"}
                        for key in ("visit_batches", "visit_person_times", "leader_receptions")
                    },
                },
                "visits": _obj(
                    {
                        "previous_start": DATE,
                        "previous_end": DATE,
                        "kinds": {"type": "array", "items": visit_kind},
                        "supervision": _obj({"supervisions": INT, "items": INT}),
                    }
                ),
            }
        ),
        "Visit": _obj(
            {
                "id": INT,
                "kind": _enum(VisitKind),
                "kind_label": STR,
                "unit_id": INT,
                "visited_on": DATE,
                "persons": INT,
                "collective": BOOL,
                "leader_account_id": _nullable(INT),
                "item_id": _nullable(ID32),
                "place": _nullable(STR),
                "note": STR,
                "recorded_by": _nullable(INT),
                "recorded_at": DATETIME,
            }
        ),
        "Session": _obj(session_props),
        "SessionDetail": _obj(
            session_props
            | {
                "participants": {"type": "array", "items": participant},
                "events": {"type": "array", "items": {"type": "object"}},
                "recordings": {"type": "array", "items": recording},
            }
        ),
        "Account": _obj(
            {
                "id": INT,
                "username": STR,
                "name": STR,
                "unit_id": INT,
                "roles": {"type": "array", "items": _enum(Role)},
            }
        ),
        "Announcement": _obj(
            {
                "id": INT,
                "unit_id": INT,
                "title": STR,
                "body": STR,
                "published_at": DATETIME,
                "expires_at": DATETIME,
            }
        ),
        "AnnouncementListed": _obj(
            {
                "id": INT,
                "unit_id": INT,
                "title": STR,
                "body": STR,
                "published_at": DATETIME,
                "expires_at": DATETIME,
                "unit_name": STR,
                "author_id": INT,
                "author_name": STR,
                "withdrawn_at": _nullable(DATETIME),
                "can_withdraw": BOOL,
                # in the list only (which terminals showed it), not in the withdrawal's answer
                "delivery": _obj(
                    {
                        "terminals": INT,
                        "shown": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "terminal_id": INT,
                                    "name": STR,
                                    "unit_name": STR,
                                    "at": DATETIME,
                                }
                            ),
                        },
                    }
                ),
            },
            required=[
                "id",
                "unit_id",
                "title",
                "body",
                "published_at",
                "expires_at",
                "unit_name",
                "author_id",
                "author_name",
                "withdrawn_at",
                "can_withdraw",
            ],
        ),
    }


# ---- operations ------------------------------------------------------------------------------


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def _op(
    summary: str,
    ok: Schema | None,
    *,
    status: str = "200",
    body: Schema | None = None,
    body_required: bool = True,
    params: list[Schema] | None = None,
    public: bool = False,
    content_type: str = "application/json",
    tag: str = "items",
) -> Schema:
    responses: Schema = {
        "default": {"description": ERROR_DESCRIPTION, "content": _json(_ref("Error"))}
    }
    if content_type == "application/json":
        responses[status] = {"description": "OK", "content": _json(ok or {})}
    else:
        responses[status] = {
            "description": "OK",
            "content": {content_type: {"schema": ok or {"type": "string"}}},
        }
    op: Schema = {"summary": summary, "tags": [tag], "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": _json(body)}
    if params:
        op["parameters"] = params
    if public:
        op["security"] = []
    return op


def _path(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: Schema, description: str = "") -> Schema:
    out: Schema = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        out["description"] = description
    return out


ITEM_ID = _path("item_id", ID32)
CASE_ID = _path("case_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})
SESSION_ID = _path("session_id", {"type": "string", "pattern": "^[0-9a-zA-Z]{1,32}$"})
UNIT_QUERY = _query("unit_id", UNIT_ID, "a unit in the caller's scope (default: the caller's)")
CSV_ENUM = {"type": "string", "minLength": 1, "maxLength": 300}
#: the filters and the order of the item list and its CSV
LIST_QUERY = [
    UNIT_QUERY,
    _query("state", CSV_ENUM, "comma-separated states"),
    _query("type", CSV_ENUM, "comma-separated types"),
    _query("channel", CSV_ENUM, "comma-separated channels"),
    _query("category", CSV_ENUM, "comma-separated categories"),
    _query("from", DATE, "registered on or after"),
    _query("until", DATE, "registered on or before"),
    _query("urgent", _enum(["true", "false"])),
    _query("handler", {"type": "string", "pattern": r"^(me|\d{1,10})$"}, "me or an account id"),
    _query("due_before", DATE, "current deadline before this day"),
    _query("overdue", _enum(["true", "false"]), "current deadline before today"),
    _query("sort", _enum(["received", "due", "state"]), "default received"),
    _query("order", _enum(["desc", "asc"]), "default desc"),
]


def _upload_op() -> Schema:
    op = _op(
        "Attach a file: multipart part 'file', or the raw body with ?filename=. Images, PDF, "
        "OFD, office documents, audio, video; at most 20 MiB; 413 too large, 415 type not "
        "allowed or content not matching the name, 422 empty",
        _ref("Attachment"),
        status="201",
        params=[ITEM_ID, _query("filename", {"type": "string", "minLength": 1, "maxLength": 300})],
        tag="attachments",
    )
    op["requestBody"] = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
    return op


def _download_op() -> Schema:
    op = _op(
        "Download an attachment (audit-logged; confidential items: handlers only)",
        None,
        params=[ITEM_ID, _path("attachment_id", {"type": "integer", "minimum": 1})],
        tag="attachments",
    )
    binary = {"schema": {"type": "string", "format": "binary"}}
    op["responses"]["200"] = {
        "description": "the file, Content-Disposition: attachment",
        "content": {t: binary for t in sorted({t for t, _ in ATTACHMENT_TYPES.values()})},
    }
    return op


def _stats_params() -> list[Schema]:
    return [
        _query("year", {"type": "integer", "minimum": 2000, "maximum": 2100}),
        _query("start", DATE, "first day (with end; overrides year)"),
        _query("end", DATE, "the day after the last day"),
        UNIT_QUERY,
        _query("by", _enum(["registering", "handling"])),
    ]


def _items_paths() -> dict[str, Schema]:
    register_body = _obj(
        {
            "registering_unit_id": UNIT_ID,
            "type": _enum(ItemType),
            "channel": _enum(Channel),
            "request": _text(MAX_TEXT),
            "facts": _text(MAX_TEXT, min_len=0),
            "reasons": _text(MAX_TEXT, min_len=0),
            "category": _text(64, min_len=0),
            "place": _text(200, min_len=0),
            "online_platform": _enum(ONLINE_PLATFORMS),
            "origin_level": _enum(OriginLevel),
            "led_by_other_unit": BOOL,
            "repeat": BOOL,
            "urgent": BOOL,
            "major": BOOL,
            "confidential": BOOL,
            "anonymous": BOOL,
            "is_group": BOOL,
            "group_size": {"type": "integer", "minimum": 1, "maximum": 100_000},
            "petitioners": {
                "type": "array",
                "maxItems": 50,
                "items": _obj(
                    {
                        "name": _text(200),
                        "id_number": _text(32, min_len=0),
                        "address": _text(300, min_len=0),
                        "phone": _text(32, min_len=0),
                        "is_representative": BOOL,
                    },
                    required=["name"],
                ),
            },
            "agent_name": _text(200, min_len=0),
            "agent_authorisation": _text(200, min_len=0),
            "subject_unit_id": UNIT_ID,
            "national_number": _text(64, min_len=0),
            "session_id": {"type": "string", "pattern": "^[0-9a-zA-Z]{1,32}$"},
            "duplicate_of_id": ID32,
            "reviews_item_id": ID32,
        },
        required=["type", "channel", "request"],
    )
    paths: dict[str, Schema] = {
        "/api/items": {
            "post": _op(
                "Register an item (any channel); possible duplicates are returned",
                _ref("Registered"),
                status="201",
                body=register_body,
            ),
            "get": _op(
                "Items in the caller's scope, newest first (confidential only to handlers)",
                {
                    "type": "object",
                    "properties": {"items": {"type": "array", "items": _ref("ItemSummary")}},
                    "required": ["items"],
                    "additionalProperties": False,
                },
                params=[
                    *LIST_QUERY,
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                    _query("offset", {"type": "integer", "minimum": 0, "maximum": 1_000_000}),
                ],
            ),
        },
        "/api/items.csv": {
            "get": _op(
                "The filtered item list as CSV (UTF-8 with a BOM; identities masked; at most "
                "2000 rows, a last line says when more matched); audit-logged",
                {"type": "string"},
                params=LIST_QUERY,
                content_type="text/csv",
            )
        },
        "/api/handlers": {
            "get": _op(
                "Officials who may be named as an item's handler (of the caller's scope, or of "
                "the subtree of unit_id)",
                _obj(
                    {
                        "handlers": {
                            "type": "array",
                            "items": _obj(
                                {"id": INT, "name": STR, "unit_id": INT, "unit_name": STR}
                            ),
                        }
                    }
                ),
                params=[_query("unit_id", UNIT_ID)],
            )
        },
        "/api/items/due": {
            "get": _op(
                "Items whose unit deadline falls within N days",
                _ref("DueList"),
                params=[
                    UNIT_QUERY,
                    _query("within_days", {"type": "integer", "minimum": 0, "maximum": 366}),
                ],
            )
        },
        "/api/items/counts": {
            "get": _op(
                "The navigation's badges: overdue, due within 3 days, waiting for "
                "acknowledgement by the caller's units, backlog entries missing",
                _obj(
                    {
                        "overdue": INT,
                        "due_soon": INT,
                        "to_acknowledge": INT,
                        "backlog_missing": INT,
                    }
                ),
            )
        },
        "/api/items/overdue": {
            "get": _op("Items whose unit deadline has passed", _ref("DueList"), params=[UNIT_QUERY])
        },
        "/api/items/lookup": {
            "get": _op(
                "An item by lookup code (audit-logged)",
                _ref("ItemDetail"),
                params=[{**_query("code", {"type": "string", "maxLength": 40}), "required": True}],
            )
        },
        "/api/items/{item_id}": {
            "get": _op("One item in full (audit-logged)", _ref("ItemDetail"), params=[ITEM_ID])
        },
        "/api/items/{item_id}/history": {
            "get": _op(
                "The append-only history",
                _obj(
                    {"item_id": ID32, "history": {"type": "array", "items": _ref("HistoryEntry")}}
                ),
                params=[ITEM_ID],
            )
        },
        "/api/items/{item_id}/petitioners/{position}/reveal": {
            "post": _op(
                "The full identity number or phone of one petitioner (masked everywhere "
                "else); audited with the reason",
                _obj(
                    {
                        "item_id": ID32,
                        "position": INT,
                        "field": _enum(["id_number", "phone"]),
                        "value": _nullable(STR),
                    }
                ),
                body=_obj(
                    {"field": _enum(["id_number", "phone"]), "reason": _text(200)},
                ),
                params=[
                    ITEM_ID,
                    _path("position", {"type": "integer", "minimum": 0, "maximum": 99}),
                ],
            )
        },
        "/api/items/{item_id}/evaluation": {
            "post": _op(
                "Record the rating of a petitioner without a phone on their behalf (audited)",
                _ref("Item"),
                body=_obj(
                    {
                        "stage": _enum(["acceptance", "handling"]),
                        "satisfied": BOOL,
                        "note": _text(500),
                    }
                ),
                params=[ITEM_ID],
            )
        },
        "/api/items/{item_id}/co-handlers": {
            "post": _op(
                "Add a co-handling unit",
                _ref("Item"),
                body=_obj({"unit_id": UNIT_ID}),
                params=[ITEM_ID],
            )
        },
        "/api/items/{item_id}/handlers/{account_id}": {
            "put": _op(
                "Make an account a handler, or record its recusal (Art. 28)",
                _ref("Item"),
                body=_obj({"recused": BOOL, "reason": _text(2000, min_len=0)}, required=[]),
                params=[ITEM_ID, _path("account_id", UNIT_ID)],
            )
        },
        "/api/items/{item_id}/sessions": {
            "get": _op(
                "Sessions linked to the item",
                _obj({"sessions": {"type": "array", "items": _ref("Session")}}),
                params=[ITEM_ID],
            ),
            "post": _op(
                "Link a session to the item",
                _obj({"session_id": STR, "item_id": ID32}),
                body=_obj({"session_id": {"type": "string", "pattern": "^[0-9a-zA-Z]{1,32}$"}}),
                params=[ITEM_ID],
            ),
        },
        "/api/items/{item_id}/notices/{kind}": {
            "get": _op(
                "A written notice as printable HTML (Chinese), with the lookup code",
                {"type": "string"},
                params=[ITEM_ID, _path("kind", _enum(NOTICE_KINDS))],
                content_type="text/html",
            )
        },
        "/api/items/{item_id}/backlog": {
            "post": _op(
                "Flag as a backlog case with the five ones (五个一)",
                _ref("BacklogCase"),
                status="201",
                body=_obj(
                    {
                        "leader_account_id": UNIT_ID,
                        "team": _text(MAX_TEXT),
                        "resolution_plan": _text(MAX_TEXT),
                        "stability_plan": _text(MAX_TEXT),
                        "ledger": _text(MAX_TEXT),
                        "unit_ids": {
                            "type": "array",
                            "items": UNIT_ID,
                            "minItems": 1,
                            "maxItems": 50,
                        },
                        "plan_due_on": _nullable(DATE),
                    },
                    required=[
                        "leader_account_id",
                        "team",
                        "resolution_plan",
                        "stability_plan",
                        "ledger",
                        "unit_ids",
                    ],
                ),
                params=[ITEM_ID],
            )
        },
        "/api/upload/items/{item_id}/attachments": {
            "post": _upload_op(),
        },
        "/api/items/{item_id}/attachments": {
            "get": _op(
                "The item's attachments (audit-logged)",
                _obj({"attachments": {"type": "array", "items": _ref("Attachment")}}),
                params=[ITEM_ID],
            )
        },
        "/api/items/{item_id}/attachments/{attachment_id}": {
            "get": _download_op(),
        },
        "/api/public/progress": {
            "get": _op(
                "Progress by lookup code: states and dates, no personal data",
                _ref("PublicProgress"),
                params=[{**_query("code", {"type": "string", "maxLength": 40}), "required": True}],
                public=True,
                tag="public",
            )
        },
        "/api/public/evaluate": {
            "post": _op(
                "Rate acceptance or handling (code + last 4 phone digits); a wrong code and "
                "wrong digits give the same 404",
                _ref("PublicProgress"),
                body=_obj(
                    {
                        "code": _text(40),
                        "phone_last4": _text(8),
                        "stage": _enum(["acceptance", "handling"]),
                        "satisfied": BOOL,
                    }
                ),
                public=True,
                tag="public",
            )
        },
        "/api/backlog": {
            "get": _op(
                "Backlog cases in the caller's scope (mine=true: where I am the leader)",
                _obj({"cases": {"type": "array", "items": _ref("BacklogCaseSummary")}}),
                params=[_query("mine", _enum(["true", "false"]))],
                tag="backlog",
            )
        },
        "/api/backlog/mine": {
            "get": _op(
                "The leader's own cases on a phone-sized HTML page",
                {"type": "string"},
                content_type="text/html",
                tag="backlog",
            )
        },
        "/api/backlog/attention": {
            "get": _op(
                "Per unit in scope, open backlog cases with an overdue plan or missing monthly "
                "entries",
                _obj(
                    {
                        "today": DATE,
                        "overdue_plans": INT,
                        "missing_entries": INT,
                        "units": {"type": "array", "items": _ref("BacklogAttention")},
                    }
                ),
                params=[UNIT_QUERY, _query("as_of", DATE, "the day to judge on (default today)")],
                tag="backlog",
            )
        },
        "/api/backlog/{case_id}/plan-due": {
            "put": _op(
                "Set or clear the day the resolution plan is due (化解时限)",
                _ref("BacklogCase"),
                body=_obj({"plan_due_on": _nullable(DATE)}),
                params=[CASE_ID],
                tag="backlog",
            )
        },
        "/api/backlog/{case_id}/close": {
            "post": _op(
                "Close the case (销号): its item concluded and resolved; by its leader in "
                "charge or a leader with edit rights on the item; audit-logged",
                _ref("BacklogCase"),
                params=[CASE_ID],
                tag="backlog",
            )
        },
        "/api/backlog/{case_id}": {
            "get": _op(
                "A backlog case with progress entries and missing months",
                _ref("BacklogCaseDetail"),
                params=[CASE_ID],
                tag="backlog",
            )
        },
        "/api/backlog/{case_id}/missing": {
            "get": _op(
                "Months without a progress entry, per involved unit",
                _obj(
                    {
                        "case_id": INT,
                        "through": DATE,
                        "missing_months": {
                            "type": "object",
                            "additionalProperties": {"type": "array", "items": STR},
                        },
                    }
                ),
                params=[CASE_ID, _query("through", DATE)],
                tag="backlog",
            )
        },
        "/api/backlog/{case_id}/progress": {
            "post": _op(
                "A unit's monthly progress entry",
                _ref("ProgressEntry"),
                status="201",
                body=_obj(
                    {
                        "unit_id": UNIT_ID,
                        "month": {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"},
                        "text": _text(MAX_TEXT),
                    }
                ),
                params=[CASE_ID],
                tag="backlog",
            )
        },
        "/api/visits": {
            "post": _op(
                "Record a batch of visitors: walk-in (来访), leader reception (领导接访), "
                "outreach (下访), or to a higher level (赴市/赴省/进京); audited",
                _ref("Visit"),
                status="201",
                body=_obj(
                    {
                        "kind": _enum(VisitKind),
                        "unit_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                        "visited_on": DATE,
                        "persons": {"type": "integer", "minimum": 1, "maximum": 10_000},
                        "leader_account_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                        "item_id": ID32,
                        "place": _text(200),
                        "note": _text(2000, min_len=0),
                    },
                    required=["kind", "visited_on", "persons"],
                ),
                tag="visits",
            ),
            "get": _op(
                "Visits of the caller's scope, newest first",
                _obj({"visits": {"type": "array", "items": _ref("Visit")}}),
                params=[
                    _query("unit_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID}),
                    _query("from", DATE),
                    _query("until", DATE),
                    _query("kind", _enum(VisitKind)),
                ],
                tag="visits",
            ),
        },
        "/api/online-platforms": {
            "get": _op(
                "The online platforms a new online item may name",
                _obj({"platforms": {"type": "array", "items": STR}}),
                tag="items",
            )
        },
        "/api/items/{item_id}/supervise": {
            "post": _op(
                "Supervise (督办) an item, by a unit above the one holding it; audited",
                {"type": "object"},
                status="201",
                body=_obj({"reason": _text(2000), "due_on": DATE}, required=["reason"]),
                params=[ITEM_ID],
            )
        },
        "/api/stats": {
            "get": _op(
                "Statistics of a period for a unit subtree",
                _ref("Report"),
                params=_stats_params(),
                tag="stats",
            )
        },
        "/api/stats/records": {
            "get": _op(
                "The records a report figure counts, as of the report's instant (in scope; "
                "confidential items the reader may not read are counted in withheld)",
                _obj(
                    {
                        "figure": STR,
                        "as_of": DATETIME,
                        "count": INT,
                        "withheld": INT,
                        "truncated": BOOL,
                        "records": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "id": ID32,
                                    "lookup_code": LOOKUP_CODE,
                                    "state": _enum(ItemState),
                                    "state_label": STR,
                                    "registered_at": DATETIME,
                                    "channel": STR,
                                    "category": _nullable(STR),
                                    "registering_unit_id": INT,
                                    "handling_unit_id": _nullable(INT),
                                    "at": _nullable(DATETIME),
                                }
                            ),
                        },
                    }
                ),
                params=[
                    {
                        **_query("figure", STR, "concluded, channel:letter, resolved:central ..."),
                        "required": True,
                    },
                    *_stats_params(),
                ],
                tag="stats",
            )
        },
        "/api/stats/csv": {
            "get": _op(
                "The statistics as CSV",
                {"type": "string"},
                params=_stats_params(),
                content_type="text/csv",
                tag="stats",
            )
        },
        "/api/stats/bureau-report": {
            "get": _op(
                "The report a bureau files: Chinese sections, year-on-year change, every sum "
                "checked and inconsistencies named",
                {"type": "string"},
                params=_stats_params(),
                content_type="text/html",
                tag="stats",
            )
        },
        "/api/stats/report": {
            "get": _op(
                "The (annual) report as printable HTML, mismatches shown",
                {"type": "string"},
                params=_stats_params(),
                content_type="text/html",
                tag="stats",
            )
        },
        "/api/openapi.json": {"get": _op("This document", {"type": "object"}, tag="meta")},
    }
    for spec in ACTIONS:
        body = _obj(dict(spec.fields), required=list(spec.required))
        paths[f"/api/items/{{item_id}}/{spec.name}"] = {
            "post": _op(
                f"{spec.summary} (event '{spec.event.value}'); 409 names the state and the "
                "allowed actions",
                _ref("Item"),
                body=body,
                body_required=False,
                params=[ITEM_ID],
                tag="lifecycle",
            )
        }
    return paths


def _foundation_paths() -> dict[str, Schema]:
    """The routes of ``web/api.py``."""
    invite_roles = [
        ParticipantRole.LAWYER,
        ParticipantRole.COUNSELLOR,
        ParticipantRole.SOCIAL_WORKER,
        ParticipantRole.OFFICIAL,
        ParticipantRole.PARTY,
        ParticipantRole.FIELD,
        ParticipantRole.VIEWER,
    ]
    name200 = _text(200)
    return {
        "/api/login": {
            "post": _op(
                "Sign in; sets the pg_session cookie and returns the CSRF token",
                _obj({"account": _ref("Account"), "csrf_token": STR}),
                body=_obj(
                    {
                        "username": {"type": "string", "minLength": 1, "maxLength": 64},
                        "password": {"type": "string", "minLength": 1, "maxLength": 256},
                    }
                ),
                public=True,
                tag="auth",
            )
        },
        "/api/logout": {
            "post": _op("Sign out", _ref("Ok"), tag="auth"),
        },
        "/api/me": {
            "get": _op(
                "Who am I",
                _obj(
                    {
                        "kind": _enum(["account", "terminal", "invite"]),
                        "id": STR,
                        "name": STR,
                        "unit_id": _nullable(INT),
                        "unit_name": _nullable(STR),
                        "roles": {"type": "array", "items": _enum(Role)},
                        "session_id": _nullable(STR),
                        "csrf_token": _nullable(STR),
                    }
                ),
                tag="auth",
            )
        },
        "/api/orgs": {
            "get": _op(
                "Units in the caller's scope",
                _obj(
                    {
                        "units": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "id": INT,
                                    "code": STR,
                                    "name": STR,
                                    "level": STR,
                                    "parent_id": _nullable(INT),
                                    "active": BOOL,
                                    "in_scope": BOOL,
                                },
                                required=["id", "code", "name", "level", "parent_id", "active"],
                            ),
                        }
                    }
                ),
                tag="orgs",
            )
        },
        "/api/sessions": {
            "get": _op(
                "Sessions of the caller's scope, newest first",
                _obj({"sessions": {"type": "array", "items": _ref("Session")}}),
                params=[
                    _query("state", _enum(SessionState)),
                    _query("kind", _enum(SessionKind)),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                ],
                tag="sessions",
            )
        },
        "/api/sessions/{session_id}": {
            "get": _op(
                "One session with participants, events and recordings (audit-logged)",
                _ref("SessionDetail"),
                params=[SESSION_ID],
                tag="sessions",
            )
        },
        "/api/sessions/{session_id}/receipt": {
            "get": _op(
                "A visit's receipt, for the terminal that made it only (403 for anyone else, "
                "404 for another terminal's session): lookup code, reference, category key and "
                "the item's next unit deadline (audit-logged)",
                _obj(
                    {
                        "session": STR,
                        "reference": STR,
                        "state": _enum(SessionState),
                        "ended_at": _nullable(DATETIME),
                        "category": _nullable(STR),
                        "rating": _nullable(INT),
                        "lookup_code": _nullable(LOOKUP_CODE),
                        "item_state": _nullable(_enum(ItemState)),
                        "due": _nullable(
                            _obj({"on": DATE, "what": _nullable(STR), "provisional": BOOL})
                        ),
                    }
                ),
                params=[SESSION_ID],
                tag="sessions",
            )
        },
        "/api/trainings": {
            "get": _op(
                "Live and upcoming trainings the caller (an official or a terminal) may join, "
                "live first (403 for invites)",
                _obj(
                    {
                        "trainings": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "id": STR,
                                    "reference": STR,
                                    "title": STR,
                                    "state": _enum(["live", "waiting"]),
                                    "unit_id": INT,
                                    "unit_name": _nullable(STR),
                                    "created_at": DATETIME,
                                    "started_at": _nullable(DATETIME),
                                }
                            ),
                        }
                    }
                ),
                tag="sessions",
            )
        },
        "/api/recordings/{recording_id}/file": {
            "get": _op(
                "A recorded file (Range supported; every playback audit-logged)",
                {"type": "string", "format": "binary"},
                params=[
                    _path("recording_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})
                ],
                content_type="video/webm",
                tag="sessions",
            )
        },
        "/api/sessions/{session_id}/invites": {
            "post": _op(
                "A time-limited invite link for this session",
                _obj(
                    {
                        "id": STR,
                        "token": STR,
                        "url": STR,
                        "expires_at": DATETIME,
                        "role": _enum(invite_roles),
                    }
                ),
                status="201",
                body=_obj(
                    {
                        "role": _enum(invite_roles),
                        "name": name200,
                        "ttl_s": {"type": "integer", "minimum": 60, "maximum": 30 * 86400},
                        "unit_id": UNIT_ID,
                    },
                    required=["role", "name"],
                ),
                params=[SESSION_ID],
                tag="sessions",
            )
        },
        "/api/invites/{invite_id}": {
            "delete": _op(
                "Revoke an invite",
                _ref("Ok"),
                params=[_path("invite_id", {"type": "string", "maxLength": 64})],
                tag="sessions",
            )
        },
        "/api/terminals": {
            "post": _op(
                "Create a community terminal; the credential is shown once",
                _obj({"id": INT, "name": STR, "unit_id": INT, "credential": STR}),
                status="201",
                body=_obj({"unit_id": UNIT_ID, "name": name200}),
                tag="admin",
            )
        },
        "/api/terminals/{terminal_id}": {
            "delete": _op(
                "Revoke a terminal's credential",
                _ref("Ok"),
                params=[_path("terminal_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})],
                tag="admin",
            )
        },
        "/api/accounts": {
            "post": _op(
                "Create an official's account",
                _ref("Account"),
                status="201",
                body=_obj(
                    {
                        "unit_id": UNIT_ID,
                        "roles": {"type": "array", "items": _enum(Role), "minItems": 1},
                        "username": {"type": "string", "minLength": 1, "maxLength": 64},
                        "name": name200,
                        "password": {"type": "string", "maxLength": 256},
                    },
                    required=["unit_id", "roles", "username", "name", "password"],
                ),
                tag="admin",
            )
        },
        "/api/audit": {
            "get": _op(
                "The newest audit entries",
                _obj(
                    {
                        "entries": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "at": DATETIME,
                                    "actor": STR,
                                    "action": STR,
                                    "object_type": STR,
                                    "object_id": STR,
                                    "remote": STR,
                                    "outcome": STR,
                                    "detail": {"type": "object"},
                                }
                            ),
                        }
                    }
                ),
                params=[
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _query("action", {"type": "string", "maxLength": 64}),
                    _query("object_id", {"type": "string", "maxLength": 64}),
                    _query("actor", {"type": "string", "maxLength": 80}),
                ],
                tag="admin",
            )
        },
        "/api/announcements": {
            "get": _op(
                "Announcements published to units of the caller's scope, newest first",
                _obj({"announcements": {"type": "array", "items": _ref("AnnouncementListed")}}),
                tag="admin",
            ),
            "post": _op(
                "Publish an announcement to the terminals of a unit subtree",
                _ref("Announcement"),
                status="201",
                body=_obj(
                    {
                        "unit_id": UNIT_ID,
                        "title": name200,
                        "body": _text(5000),
                        "expires_in_h": {"type": "integer", "minimum": 1, "maximum": 24 * 365},
                    },
                    required=["title", "body"],
                ),
                tag="admin",
            ),
        },
        "/api/leaders": {
            "get": _op(
                "The leaders of the units the caller sees (approvers, the duty roster)",
                _obj(
                    {
                        "leaders": {
                            "type": "array",
                            "items": _obj(
                                {"id": INT, "name": STR, "unit_id": INT, "unit_name": STR}
                            ),
                        }
                    }
                ),
                params=[_query("unit_id", UNIT_ID)],
                tag="admin",
            )
        },
        "/api/announcements/{announcement_id}/withdraw": {
            "post": _op(
                "Withdraw an announcement (terminals drop it at once)",
                _ref("AnnouncementListed"),
                body=None,
                params=[
                    _path("announcement_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID})
                ],
                tag="admin",
            )
        },
        "/api/duty": {
            "get": _op(
                "The duty roster of a week per unit a to_leader visit may reach",
                _obj(
                    {
                        "days": {"type": "array", "items": DATE},
                        "units": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "unit_id": INT,
                                    "unit_name": STR,
                                    "reception": BOOL,
                                    "can_edit": BOOL,
                                    "leaders": {
                                        "type": "array",
                                        "items": _obj({"id": INT, "name": STR}),
                                    },
                                    "days": {
                                        "type": "object",
                                        "additionalProperties": _nullable(
                                            _obj({"account_id": INT, "name": STR})
                                        ),
                                    },
                                }
                            ),
                        },
                    }
                ),
                params=[
                    _query("from", DATE),
                    _query("days", {"type": "integer", "minimum": 1, "maximum": 31}),
                ],
                tag="admin",
            )
        },
        "/api/duty/{day}": {
            "put": _op(
                "Set the leader on duty of a unit for a day (a leader of that very unit)",
                _obj({"day": DATE, "unit_id": INT, "account_id": INT}),
                body=_obj({"unit_id": UNIT_ID, "account_id": UNIT_ID}),
                params=[_path("day", DATE)],
                tag="admin",
            )
        },
    }


@functools.cache
def _document() -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "petition-gateway API",
            "version": "1",
            "description": (
                "REST API of the video petition gateway. Officials sign in with POST /api/login "
                "(cookie pg_session; state-changing requests also send the X-CSRF-Token header "
                "from the login answer); terminals and invite holders send a bearer token. "
                "/api/public/ needs no login. Every /api route is rate-limited per address."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"cookieAuth": [], "csrfToken": []}, {"bearerAuth": []}],
        "paths": _foundation_paths() | _items_paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "pg_session"},
                "csrfToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRF-Token",
                    "description": "the csrf_token of the login answer; needed on POST/PUT/DELETE",
                },
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a terminal's device credential (pgt_…) or an invite (pgi_…)",
                },
            },
        },
    }


def build_document() -> Schema:
    """The OpenAPI document (a fresh copy the caller may change)."""
    return copy.deepcopy(_document())


@routes.get("/api/openapi.json")
async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of every /api route (public: it holds no data)."""
    return web.json_response(build_document())
