"""Protocol v1 of ``/ws``: the one envelope, the message schemas, the error codes.

Every message is a JSON object with a ``type``. Requests from the client carry an ``id``
(1-64 characters) and are answered by ``{"type": "result", "id", "data"}`` or
``{"type": "error", "id", "code", "message"}``. Events from the hub carry no ``id``.
All parsing and validation happens here, against the schemas each command module declares
beside its handler (:mod:`signaling.registry`); handlers only ever see a :class:`Request` whose
fields have the declared types. docs/protocol.md documents every type.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from config.errors import SignalingError
from records.text import TooDeep, find_unstorable, unstorable_char

# ---- error codes (stable; clients switch on them) ------------------------------------------
BAD_JSON = "bad_json"
BAD_MESSAGE = "bad_message"
UNKNOWN_TYPE = "unknown_type"
TOO_LARGE = "too_large"
RATE_LIMITED = "rate_limited"
UNAUTHENTICATED = "unauthenticated"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
INVALID_STATE = "invalid_state"
CONFLICT = "conflict"
ALREADY_TAKEN = "already_taken"
MEDIA_UNAVAILABLE = "media_unavailable"
HEARTBEAT_TIMEOUT = "heartbeat_timeout"
INTERNAL = "internal_error"

ERROR_CODES = frozenset(
    {
        BAD_JSON,
        BAD_MESSAGE,
        UNKNOWN_TYPE,
        TOO_LARGE,
        RATE_LIMITED,
        UNAUTHENTICATED,
        FORBIDDEN,
        NOT_FOUND,
        INVALID_STATE,
        CONFLICT,
        ALREADY_TAKEN,
        MEDIA_UNAVAILABLE,
        HEARTBEAT_TIMEOUT,
        INTERNAL,
    }
)


class ProtocolError(SignalingError):
    """A message that cannot be handled; carries the wire code and the request id if known."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    """One field of a message schema."""

    kind: str  # str | int | bool | dict | list | any | sdp | id
    required: bool = True
    max_len: int = 200
    lo: int = 0
    hi: int = 2**31
    choices: tuple[str, ...] = ()


ID = Field("id", max_len=32)
SDP = Field("sdp", max_len=60_000)


@dataclasses.dataclass(frozen=True, slots=True)
class Schema:
    """One client message type: its fields (besides ``type`` and ``id``), whether it needs an id.

    Requests need an ``id``; notifications (``ping``, ``media.answer``, ``media.candidate``)
    may come without one.
    """

    fields: Mapping[str, Field]
    needs_id: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """A validated client message."""

    type: str
    id: str | None
    fields: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.fields.get(key)


def parse(raw: str | bytes, max_bytes: int, schemas: Mapping[str, Schema]) -> Request:
    """Parse and validate one client message against the schemas of the known types.

    ``schemas`` is the command table's (``signaling.commands.SCHEMAS``): each type is declared
    once, beside its handler.

    Raises:
        ProtocolError: with the wire code (too_large, bad_json, bad_message, unknown_type).
    """
    if len(raw) > max_bytes:
        raise ProtocolError(TOO_LARGE, f"message of {len(raw)} bytes exceeds {max_bytes}")
    try:
        data = json.loads(raw)
    except RecursionError as exc:
        # a C-level limit: deep nesting fits in far less than max_bytes ("[" * 60000)
        raise ProtocolError(BAD_JSON, "not valid JSON: nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(BAD_JSON, f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError(BAD_MESSAGE, f"a message is a JSON object, got {type(data).__name__}")
    request_id = data.get("id")
    # the id is echoed in every reply: one that could not be sent back is not used as one
    id_ok = request_id is None or (
        isinstance(request_id, str | int)
        and not isinstance(request_id, bool)
        and len(str(request_id)) <= 64
        and (not isinstance(request_id, str) or unstorable_char(request_id) is None)
    )
    rid = None if request_id is None or not id_ok else str(request_id)
    try:
        # before anything formats a value: repr() of a deeply nested one recurses too
        bad_text = find_unstorable(data)
    except TooDeep as exc:
        raise ProtocolError(BAD_JSON, f"not valid JSON here: {exc}", rid) from exc
    if bad_text is not None:
        raise ProtocolError(BAD_MESSAGE, str(bad_text), rid)
    if not id_ok:
        raise ProtocolError(
            BAD_MESSAGE, f"id must be a string of 1-64 characters, got {request_id!r:.40}"
        )
    mtype = data.get("type")
    if not isinstance(mtype, str):
        raise ProtocolError(BAD_MESSAGE, f"type must be a string, got {mtype!r:.40}", rid)
    known = schemas.get(mtype)
    if known is None:
        raise ProtocolError(UNKNOWN_TYPE, f"unknown message type {mtype[:40]!r}", rid)
    if rid is None and known.needs_id:
        raise ProtocolError(BAD_MESSAGE, f"{mtype} is a request and needs an id", rid)
    schema = known.fields
    fields: dict[str, Any] = {}
    for name, spec in schema.items():
        value = data.get(name)
        if value is None:
            if spec.required:
                raise ProtocolError(BAD_MESSAGE, f"{mtype}: field {name!r} is required", rid)
            continue
        fields[name] = _check(mtype, name, spec, value, rid)
    extra = set(data) - set(schema) - {"type", "id"}
    if extra:
        raise ProtocolError(BAD_MESSAGE, f"{mtype}: unknown fields {sorted(extra)[:5]}", rid)
    return Request(mtype, rid, fields)


def _check(mtype: str, name: str, spec: Field, value: Any, rid: str | None) -> Any:
    where = f"{mtype}: field {name!r}"
    if spec.kind in ("str", "sdp", "id"):
        if not isinstance(value, str):
            raise ProtocolError(BAD_MESSAGE, f"{where} must be a string, got {value!r:.40}", rid)
        if len(value) > spec.max_len:
            raise ProtocolError(BAD_MESSAGE, f"{where} is longer than {spec.max_len}", rid)
        if spec.kind == "id" and (not value or not value.isalnum()):
            raise ProtocolError(BAD_MESSAGE, f"{where} is not an id: {value!r:.40}", rid)
        if spec.choices and value not in spec.choices:
            raise ProtocolError(BAD_MESSAGE, f"{where} must be one of {list(spec.choices)}", rid)
        return value
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not spec.lo <= value <= spec.hi:
            raise ProtocolError(
                BAD_MESSAGE,
                f"{where} must be a whole number {spec.lo}..{spec.hi}, got {value!r:.40}",
                rid,
            )
        return value
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise ProtocolError(
                BAD_MESSAGE, f"{where} must be true or false, got {value!r:.40}", rid
            )
        return value
    if spec.kind == "any":
        if name == "candidate":
            return _candidate(where, value, rid)
        return value
    raise ProtocolError(INTERNAL, f"{where}: schema kind {spec.kind!r} unknown", rid)


def _candidate(where: str, value: Any, rid: str | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(BAD_MESSAGE, f"{where} must be an object or null", rid)
    cand = value.get("candidate")
    mid = value.get("sdpMid")
    index = value.get("sdpMLineIndex")
    if not isinstance(cand, str) or len(cand) > 1000:
        raise ProtocolError(BAD_MESSAGE, f"{where}.candidate must be a string ≤ 1000", rid)
    if mid is not None and (not isinstance(mid, str) or len(mid) > 32):
        raise ProtocolError(BAD_MESSAGE, f"{where}.sdpMid must be a short string", rid)
    if index is not None and (
        isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 256
    ):
        raise ProtocolError(BAD_MESSAGE, f"{where}.sdpMLineIndex must be 0..255", rid)
    return {"candidate": cand, "sdpMid": mid, "sdpMLineIndex": index}


def sdp_sends_media(sdp: str) -> bool:
    """Whether an SDP offer sends audio or video (a watch-only offer does not).

    An audio/video m-section sends unless it is rejected (port 0) or its direction is
    ``recvonly`` or ``inactive``; a missing direction means ``sendrecv`` (RFC 8866 6.7).
    The hub relays SDP untouched; it reads only this, to keep viewers from publishing.
    """
    sending = False
    section: str | None = None
    direction = "sendrecv"
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            if section is not None and direction in ("sendrecv", "sendonly"):
                sending = True
            parts = line[2:].split()
            media = parts[0] if parts else ""
            port = parts[1] if len(parts) > 1 else "0"
            section = media if media in ("audio", "video") and port != "0" else None
            direction = "sendrecv"
        elif section is not None and line in (
            "a=sendrecv",
            "a=sendonly",
            "a=recvonly",
            "a=inactive",
        ):
            direction = line[2:]
    if section is not None and direction in ("sendrecv", "sendonly"):
        sending = True
    return sending


def result(request_id: str | None, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A success reply."""
    return {"type": "result", "id": request_id, "data": dict(data or {})}


def error(request_id: str | None, code: str, message: str) -> dict[str, Any]:
    """An error reply (or unsolicited error event when ``request_id`` is None)."""
    return {"type": "error", "id": request_id, "code": code, "message": message}


def event(etype: str, **fields: Any) -> dict[str, Any]:
    """An event from the hub."""
    return {"type": etype, **fields}
