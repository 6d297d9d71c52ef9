"""Protocol v1 of ``/ws``: the one envelope, the message schemas, the error codes.

Every message is a JSON object with a ``type``. Requests from the client carry an ``id``
(1-64 characters) and are answered by ``{"type": "result", "id", "data"}`` or
``{"type": "error", "id", "code", "message"}``. Events from the hub carry no ``id``.
All parsing and validation happens here, against the pydantic models of
:mod:`signaling.messages` (looked up by ``type`` in the command table,
:mod:`signaling.registry`); pydantic's errors are worded as the texts docs/protocol.md
documents (:func:`explain`). Handlers only ever see a validated model.
"""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pydantic
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from config.errors import SignalingError
from records.text import TooDeep, find_unstorable, unstorable_char
from signaling.messages import ClientModel, WireKind

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
    """One field of a client message as the error texts and docs/protocol.md describe it.

    Derived from the field's model (:func:`describe`), never written by hand: the models in
    :mod:`signaling.messages` are the one definition.
    """

    kind: str  # str | int | bool | any | sdp | id
    required: bool = True
    max_len: int = 200
    lo: int = 0
    hi: int = 2**31
    choices: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Schema:
    """One client message type: its model, its fields (besides ``type``), whether it needs an id.

    Requests need an ``id``; notifications (``ping``, ``media.answer``, ``media.candidate``)
    may come without one.
    """

    model: type[ClientModel]
    fields: Mapping[str, Field]
    needs_id: bool = True


def schema_of(model: type[ClientModel]) -> Schema:
    """The schema of a client message model."""
    return Schema(model, describe(model), model.needs_id)


def describe(model: type[ClientModel]) -> dict[str, Field]:
    """Each field of ``model`` (but ``type``) as a :class:`Field`, in declaration order."""
    return {name: _field(info) for name, info in model.model_fields.items() if name != "type"}


def _field(info: FieldInfo) -> Field:
    annotation: Any = info.annotation
    metadata: list[Any] = list(info.metadata)
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        for item in more:
            metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    spec: dict[str, Any] = {"required": info.is_required()}
    for item in metadata:
        if isinstance(item, WireKind):
            spec["kind"] = item.name
        if getattr(item, "max_length", None) is not None:
            spec["max_len"] = item.max_length
        if getattr(item, "ge", None) is not None:
            spec["lo"] = item.ge
        if getattr(item, "le", None) is not None:
            spec["hi"] = item.le
    if get_origin(annotation) is Literal:
        spec["choices"] = tuple(str(c) for c in get_args(annotation))
        spec.setdefault("kind", "str")
    elif isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        spec["kind"] = "any"
    elif annotation is bool:
        spec["kind"] = "bool"
    elif annotation is int:
        spec["kind"] = "int"
    else:
        spec.setdefault("kind", "str")
    return Field(**spec)


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """A validated client message: its type, its id (None for a notification), its model."""

    type: str
    id: str | None
    message: ClientModel


def parse(raw: str | bytes, max_bytes: int, schemas: Mapping[str, Schema]) -> Request:
    """Parse and validate one client message against the schemas of the known types.

    ``schemas`` is the command table's (``signaling.commands.SCHEMAS``): each type's model is
    in :mod:`signaling.messages`, its handler in a command module.

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
    if "id" in data:
        del data["id"]
    try:
        message = known.model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ProtocolError(BAD_MESSAGE, explain(mtype, known, data, exc), rid) from exc
    return Request(mtype, rid, message)


def explain(
    mtype: str, schema: Schema, data: Mapping[str, Any], exc: pydantic.ValidationError
) -> str:
    """The documented ``bad_message`` text for a message its model refused.

    As before the models: the first bad field in declaration order (missing or null when
    required, then kind, length, id, choice; the message quotes the value), then unknown
    fields. Pydantic decides what is wrong; this only words it.
    """
    errors = exc.errors(include_url=False)
    bad = {err["loc"][0]: err for err in reversed(errors) if err["loc"]}
    for name, spec in schema.fields.items():
        err = bad.get(name)
        if err is not None:
            return _wording(f"{mtype}: field {name!r}", spec, data.get(name), err)
    extra = set(data) - set(schema.fields) - {"type", "id"}
    if extra:
        return f"{mtype}: unknown fields {sorted(extra)[:5]}"
    return f"{mtype}: {errors[0]['msg']}"


#: what is wrong with a key of an ICE candidate (``media.candidate``)
_CANDIDATE_KEYS = {
    "candidate": "must be a string ≤ 1000",
    "sdpMid": "must be a short string",
    "sdpMLineIndex": "must be 0..255",
}


def _wording(where: str, spec: Field, value: Any, err: ErrorDetails) -> str:
    if value is None:
        return f"{where} is required"
    if spec.kind in ("str", "sdp", "id"):
        if not isinstance(value, str):
            return f"{where} must be a string, got {value!r:.40}"
        if len(value) > spec.max_len:
            return f"{where} is longer than {spec.max_len}"
        if spec.kind == "id" and (not value or not value.isalnum()):
            return f"{where} is not an id: {value!r:.40}"
        if spec.choices and value not in spec.choices:
            return f"{where} must be one of {list(spec.choices)}"
    elif spec.kind == "int":
        return f"{where} must be a whole number {spec.lo}..{spec.hi}, got {value!r:.40}"
    elif spec.kind == "bool":
        return f"{where} must be true or false, got {value!r:.40}"
    elif spec.kind == "any":
        if not isinstance(value, dict):
            return f"{where} must be an object or null"
        key = str(err["loc"][1]) if len(err["loc"]) > 1 else "candidate"
        return f"{where}.{key} {_CANDIDATE_KEYS.get(key, err['msg'])}"
    return f"{where}: {err['msg']}"


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
