"""The command table: every message type declared once, every command module collected."""

from __future__ import annotations

import importlib
import pkgutil
import types
from typing import Literal

import pytest

import signaling.commands
from signaling.commands import COMMANDS, FIELDS
from signaling.messages import ClientModel, Id
from signaling.registry import collect, command


class ThingDo(ClientModel):
    type: Literal["thing.do"] = "thing.do"
    session: Id


def test_every_command_module_is_collected() -> None:
    modules = [
        importlib.import_module(m.name)
        for m in pkgutil.iter_modules(signaling.commands.__path__, "signaling.commands.")
    ]
    declared = {t for module in modules for t in collect(module)}
    assert declared == set(COMMANDS), "a command module is missing from signaling/commands"
    assert set(FIELDS) == set(COMMANDS)


def test_only_notifications_come_without_an_id() -> None:
    assert {t for t, c in COMMANDS.items() if not c.schema.needs_id} == {
        "ping",
        "media.answer",
        "media.candidate",
    }


def test_a_type_declared_twice_is_refused() -> None:
    one = types.ModuleType("one")
    two = types.ModuleType("two")
    for module in (one, two):

        async def handler(ctx: object, req: object) -> None:
            return None

        handler.__module__ = module.__name__
        module.handler = command(ThingDo)(handler)  # type: ignore[attr-defined,arg-type]
    with pytest.raises(ValueError, match="thing.do"):
        collect(one, two)
