"""Every client message type's handler, by concern: one module each, never importing one another.

A new message type is its model in :mod:`signaling.messages` and one function decorated with
:func:`signaling.registry.command` in the module of its concern (or a new module, listed
here). docs/protocol.md documents the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from signaling.commands import (
    announcements,
    chat,
    hello,
    media,
    moderation,
    recording,
    sessions,
    training,
    visits,
)
from signaling.protocol import Field, Schema
from signaling.registry import Command, collect

#: every client → hub message type, its schema and its handler
COMMANDS: Mapping[str, Command[Any]] = collect(
    hello, visits, sessions, moderation, training, chat, recording, media, announcements
)
#: what the parser validates against
SCHEMAS: Mapping[str, Schema] = {mtype: c.schema for mtype, c in COMMANDS.items()}
#: each type's fields as derived from its model (tests generate malformed messages from these)
FIELDS: Mapping[str, Mapping[str, Field]] = {
    mtype: c.schema.fields for mtype, c in COMMANDS.items()
}
