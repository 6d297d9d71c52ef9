"""Client message types, each declared once: its fields, its handler, whether it needs an id.

In the manner of Home Assistant's ``websocket_api``, a command module declares::

    @command("visit.cancel", {"session": ID})
    async def visit_cancel(ctx: Context, req: Request) -> Reply:
        ...

``signaling/commands/__init__.py`` collects the command modules into the one table the parser
validates against (:func:`signaling.protocol.parse`) and the hub dispatches on. A new message
type is one decorated function in the module of its concern, and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

from signaling.protocol import Field, Request, Schema

if TYPE_CHECKING:
    from signaling.context import Context

#: what a handler returns: the ``data`` of the ``result`` reply (None: empty)
Reply = Mapping[str, object]
Handler = Callable[["Context", Request], Awaitable[Reply | None]]
_H = TypeVar("_H", bound=Handler)

_ATTRIBUTE = "__command__"


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    """One client message type: its schema and its handler."""

    type: str
    schema: Schema
    handler: Handler


def command(
    mtype: str, fields: Mapping[str, Field], *, needs_id: bool = True
) -> Callable[[_H], _H]:
    """Declare ``mtype``, its ``fields`` and the decorated function as its handler.

    Args:
        mtype: the message type (``"visit.request"``).
        fields: the message's fields besides ``type`` and ``id``.
        needs_id: False for notifications a client may send without an ``id``.
    """

    def declare(handler: _H) -> _H:
        setattr(handler, _ATTRIBUTE, Command(mtype, Schema(fields, needs_id), handler))
        return handler

    return declare


def collect(*modules: ModuleType) -> dict[str, Command]:
    """The commands declared in ``modules``, by type.

    Raises:
        ValueError: a type is declared twice.
    """
    table: dict[str, Command] = {}
    for module in modules:
        for value in vars(module).values():
            declared = getattr(value, _ATTRIBUTE, None)
            if not isinstance(declared, Command) or value.__module__ != module.__name__:
                continue
            if declared.type in table:
                raise ValueError(f"message type {declared.type!r} is declared twice")
            table[declared.type] = declared
    return table
