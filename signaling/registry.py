"""Client message types, each bound once to its handler: ``@command(Model)``.

In the manner of Home Assistant's ``websocket_api``, a command module declares::

    @command(VisitCancel)
    async def visit_cancel(ctx: Context, msg: VisitCancel) -> Reply:
        ...

The model (:mod:`signaling.messages`) is the message's one definition: its ``type``, its
fields and whether it needs an ``id``. ``signaling/commands/__init__.py`` collects the command
modules into the one table the parser validates against (:func:`signaling.protocol.parse`)
and the hub dispatches on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from signaling.messages import ClientModel, message_type
from signaling.protocol import Schema, schema_of

if TYPE_CHECKING:
    from signaling.context import Context

#: what a handler returns: the ``data`` of the ``result`` reply (None: empty)
Reply = Mapping[str, object]
_M = TypeVar("_M", bound=ClientModel)
Handler = Callable[["Context", _M], Awaitable[Reply | None]]

_ATTRIBUTE = "__command__"


@dataclasses.dataclass(frozen=True, slots=True)
class Command(Generic[_M]):
    """One client message type: its schema (with its model) and its handler."""

    type: str
    schema: Schema
    handler: Handler[_M]


def command(model: type[_M]) -> Callable[[Handler[_M]], Handler[_M]]:
    """Declare the decorated function as the handler of ``model``'s message type."""

    def declare(handler: Handler[_M]) -> Handler[_M]:
        setattr(handler, _ATTRIBUTE, Command(message_type(model), schema_of(model), handler))
        return handler

    return declare


def collect(*modules: ModuleType) -> dict[str, Command[Any]]:
    """The commands declared in ``modules``, by type.

    Raises:
        ValueError: a type is declared twice.
    """
    table: dict[str, Command[Any]] = {}
    for module in modules:
        for value in vars(module).values():
            declared = getattr(value, _ATTRIBUTE, None)
            if not isinstance(declared, Command) or value.__module__ != module.__name__:
                continue
            if declared.type in table:
                raise ValueError(f"message type {declared.type!r} is declared twice")
            table[declared.type] = declared
    return table
