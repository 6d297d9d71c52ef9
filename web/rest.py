"""REST operations declared beside their handlers, and the wire types they share.

Every ``/api`` handler carries an :class:`Operation` (the :func:`operation` decorator, placed
under aiohttp's route decorator): its summary and tag, the pydantic models of its request
body, query and path parameters and its answer, and the answer's status. ``web.apidoc``
builds ``/api/openapi.json`` from the app's router and these declarations, so a route and
its description live in one place; a route without one fails the coverage test.

Answers are models dumped to JSON (:func:`reply`); request bodies are read with
:func:`parse_body`, which turns the first refusal of the model into the same
``ValidationError`` (422, ``invalid``, the field named) the hand checks of :mod:`web.input`
give. Field types here (:func:`Text`, :func:`Int`, …) carry both the JSON Schema limits and
those exact messages.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, Literal, TypeVar

import pydantic
from aiohttp import web
from annotated_types import GroupedMetadata
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from config.errors import ValidationError
from records.lifecycle import ItemState

__all__ = [
    "Bool",
    "Checked",
    "Choice",
    "Flag",
    "Refused",
    "Date",
    "DateTime",
    "Error",
    "Int",
    "Ok",
    "Operation",
    "Request",
    "Text",
    "Wire",
    "operation",
    "parse_body",
    "reply",
]

Schema = dict[str, Any]
H = TypeVar("H", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)

#: a 32-bit database id
MAX_ID = 2**31 - 1
BINARY: Schema = {"type": "string", "format": "binary"}


def _iso(value: dt.datetime | dt.date) -> str:
    return value.isoformat()


#: a time on the wire: ``datetime.isoformat()`` exactly (``+00:00``, never pydantic's ``Z``)
DateTime = Annotated[
    dt.datetime,
    PlainSerializer(_iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
#: a day on the wire: ``YYYY-MM-DD``
Date = Annotated[
    dt.date,
    PlainSerializer(_iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date"}),
]


class Wire(BaseModel):
    """An answer's shape: every field present, nothing else (``additionalProperties: false``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Request(BaseModel):
    """A request body: unknown fields are ignored, as the hand checks always did."""

    model_config = ConfigDict(extra="ignore")


class ErrorDetail(Wire):
    """The error of every refusal; an illegal lifecycle transition adds the last two."""

    code: str
    message: str
    state: ItemState | None = None
    allowed_actions: list[str] | None = None


class Error(Wire):
    """Every error answer: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


class Ok(Wire):
    """``{"ok": true}``."""

    ok: Literal[True] = True


# ---- request fields with the hand checks' messages ------------------------------------------


class Refused(ValueError):
    """A field's refusal, worded as :mod:`web.input` words it (the message is the answer's)."""


class Checked(GroupedMetadata):
    """A field check with the hand checks' wording: ``Annotated[T, SomeCheck(...)]``.

    Subclasses give :meth:`check` (the value, or :class:`Refused`) and :meth:`schema`. A
    required field that is absent is checked as ``None``, so its refusal is the same words.
    """

    def check(self, value: object, key: str) -> object:
        """The value to store, or :class:`Refused`; ``key`` is the field's name, quoted."""
        raise NotImplementedError

    def schema(self) -> Schema:
        """The field's JSON Schema."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[object]:
        yield BeforeValidator(_Check(self))
        yield WithJsonSchema(self.schema())


@dataclasses.dataclass(frozen=True, slots=True)
class _Check:
    checked: Checked

    def __call__(self, value: object, info: pydantic.ValidationInfo) -> object:
        return self.checked.check(value, repr(info.field_name))


@dataclasses.dataclass(frozen=True, slots=True)
class Text(Checked):
    """A string of ``min_len..max_len`` characters, stripped (``web.input.text``).

    ``Annotated[str, Text(200)]``; ``min_len=0``: optional, absent/null/blank are ``""``.
    """

    max_len: int = 200
    min_len: int = 1
    pattern: str | None = None

    def check(self, value: object, key: str) -> str:
        """The stripped text, or the refusal ``web.input.text`` words."""
        if value is None:
            if self.min_len:
                raise Refused(f"field {key} is required")
            return ""
        if not isinstance(value, str):
            raise Refused(f"field {key} must be a string, got {value!r:.40}")
        value = value.strip()
        if self.min_len and not value:
            raise Refused(f"field {key} must not be empty")
        if len(value) > self.max_len:
            raise Refused(f"field {key} is longer than {self.max_len} characters")
        return value

    def schema(self) -> Schema:
        """``maxLength``; not blank unless optional."""
        out: Schema = {"type": "string", "maxLength": self.max_len}
        if self.min_len:
            out |= {"minLength": self.min_len, "pattern": self.pattern or r"\S"}
        elif self.pattern:
            out["pattern"] = self.pattern
        return out


@dataclasses.dataclass(frozen=True, slots=True)
class Int(Checked):
    """A whole number within ``lo..hi`` (``web.input.integer``); booleans refused.

    ``Annotated[int, Int(1, 30)]``.
    """

    lo: int = 1
    hi: int = MAX_ID

    def check(self, value: object, key: str) -> int:
        """The number, or the refusal ``web.input.integer`` words."""
        if value is None:
            raise Refused(f"field {key} is required")
        if isinstance(value, bool) or not isinstance(value, int) or not self.lo <= value <= self.hi:
            raise Refused(
                f"field {key} must be a whole number {self.lo}..{self.hi}, got {value!r:.40}"
            )
        return value

    def schema(self) -> Schema:
        """The bounds."""
        return {"type": "integer", "minimum": self.lo, "maximum": self.hi}


@dataclasses.dataclass(frozen=True, slots=True)
class Choice(Checked):
    """One of ``options`` (strings or enum members; ``web.input.choice``).

    ``Annotated[ParticipantRole, Choice(INVITE_ROLES)]``: the one definition of the options.
    """

    options: tuple[object, ...]

    def values(self) -> list[str]:
        """The allowed strings."""
        return [str(getattr(o, "value", o)) for o in self.options]

    def check(self, value: object, key: str) -> object:
        """The value, or the refusal ``web.input.choice`` words."""
        allowed = self.values()
        if value not in allowed:
            raise Refused(f"field {key} must be one of {allowed}, got {value!r:.40}")
        return value

    def schema(self) -> Schema:
        """The options."""
        return {"type": "string", "enum": self.values()}


@dataclasses.dataclass(frozen=True, slots=True)
class Flag(Checked):
    """An optional boolean (``web.items.common.boolean``): absent or null is ``None``."""

    def check(self, value: object, key: str) -> bool | None:
        """The boolean, or the refusal ``boolean`` words."""
        if value is None or isinstance(value, bool):
            return value
        raise Refused(f"field {key} must be true or false, got {value!r:.40}")

    def schema(self) -> Schema:
        """A boolean."""
        return {"type": "boolean"}


#: an optional boolean body field
Bool = Annotated[bool | None, Flag()]


def _first_message(model: type[BaseModel], exc: pydantic.ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, Refused):
        return str(cause)
    loc = ".".join(str(part) for part in err["loc"])
    if err["type"] == "missing" and len(err["loc"]) == 1:
        field = model.model_fields.get(str(err["loc"][0]))
        for meta in field.metadata if field is not None else ():
            if isinstance(meta, Checked):
                try:
                    meta.check(None, repr(loc))
                except Refused as refused:
                    return str(refused)
        return f"field {loc!r} is required"
    return f"field {loc!r}: {err['msg']}, got {err['input']!r:.40}"


def parse_body(model: type[M], data: Mapping[str, Any]) -> M:
    """``data`` (from :func:`web.input.read_json`) as ``model``, or ValidationError (422).

    The first refusal, in the order the model declares its fields, is the message.
    """
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(_first_message(model, exc)) from exc


def reply(model: BaseModel, *, status: int = 200) -> web.Response:
    """The answer: ``model`` serialised to JSON (by pydantic-core, without a dict between)."""
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )


# ---- operations -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Operation:
    """What the OpenAPI document says of one route.

    Attributes:
        summary: one line (more is the handler's docstring, for readers of the code).
        tag: the group in the document.
        response: the model of a JSON answer (None: any JSON, or see ``media``).
        status: the success status.
        body: the model of a JSON request body.
        body_required: whether the body may be left out (lifecycle actions: all optional).
        query: a model whose fields are the query parameters (aliases give their names).
        path: a model whose fields are the path parameters.
        public: no login needed.
        media: a non-JSON answer: media type → schema.
        body_media: a non-JSON request body: media type → schema.
        description: the success answer's description.
    """

    summary: str
    tag: str
    response: type[BaseModel] | None = None
    status: int = 200
    body: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    path: type[BaseModel] | None = None
    public: bool = False
    media: Mapping[str, Schema] | None = None
    body_media: Mapping[str, Schema] | None = None
    description: str = "OK"


REST_ATTR = "__rest_operation__"


def operation(summary: str, *, tag: str, **kwargs: Any) -> Callable[[H], H]:
    """Declare the handler's :class:`Operation` (put it under ``@routes.get(...)``)."""
    op = Operation(summary, tag, **kwargs)

    def mark(handler: H) -> H:
        setattr(handler, REST_ATTR, op)
        return handler

    return mark


def operation_of(handler: object) -> Operation | None:
    """The handler's declared operation, if any."""
    op = getattr(handler, REST_ATTR, None)
    return op if isinstance(op, Operation) else None


# ---- path parameters many routes share -------------------------------------------------------

ID32 = Annotated[str, Field(pattern="^[0-9a-f]{32}$")]
SESSION_ID = Annotated[str, Field(pattern="^[0-9a-zA-Z]{1,32}$")]
LOOKUP_CODE = Annotated[str, Field(pattern="^[2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5}$")]
DB_ID = Annotated[int, Field(ge=1, le=MAX_ID)]


class ItemPath(BaseModel):
    """``{item_id}``: 32 hex digits."""

    item_id: ID32


class SessionPath(BaseModel):
    """``{session_id}``."""

    session_id: SESSION_ID


class CasePath(BaseModel):
    """``{case_id}`` of a backlog case."""

    case_id: DB_ID
