"""docs/protocol.md against the models: every message documented, every documented field real.

The models (``signaling/messages.py``, ``signaling/events.py``, ``signaling/bus_messages.py``)
are the one definition of each shape; docs/protocol.md describes them in tables. For every
table this checks both ways: each type (or room ``op``) of the union is a row, each field a
row names (in backticks) is a field of the model and each field of the model is named. For
client messages it also checks what the page says of a field's kind (``str(n)``, ``id``,
``int a..b``, ``bool``, choices, ``?`` for optional) against the model.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel, TypeAdapter

from signaling import bus_messages as B
from signaling import events as E
from signaling.commands import COMMANDS, FIELDS
from signaling.messages import ClientMessage
from signaling.protocol import Field

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()

NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")
TYPE = re.compile(r"`([a-z][a-z_.]*)`")


def section(heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    lines = DOC.splitlines()
    start = lines.index(heading)
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].startswith("#") and lines[i].split(" ", 1)[0] <= level
        ),
        len(lines),
    )
    return "\n".join(lines[start + 1 : end])


def rows(text: str) -> list[list[str]]:
    """The body rows of the first table in ``text``, as cells."""
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) > 2, "no table found"
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]


def documented(heading: str) -> dict[str, set[str]]:
    """type → the field names its row gives (types in the first cell, fields in the second)."""
    found: dict[str, set[str]] = {}
    for cells in rows(section(heading)):
        names = set(NAME.findall(cells[1]))
        for mtype in TYPE.findall(cells[0]):
            found[mtype] = names
    return found


def union_fields(union: object, tag: str) -> dict[str, set[str]]:
    """tag value → field names (without the tag) of each model of a tagged union."""
    members = typing.get_args(typing.get_args(union)[0])
    out: dict[str, set[str]] = {}
    for model in members:
        assert issubclass(model, BaseModel)
        value = model.model_fields[tag].default
        out[value] = set(model.model_fields) - {tag}
    return out


def check(heading: str, union: object, tag: str = "type") -> None:
    docs = documented(heading)
    models = union_fields(union, tag)
    assert set(docs) == set(models), f"{heading}: documented {sorted(docs)} vs {sorted(models)}"
    for mtype, fields in models.items():
        assert docs[mtype] == fields, f"{heading}, {mtype}: documented {docs[mtype]} vs {fields}"


# ---- client messages -------------------------------------------------------------------------


def requests() -> dict[str, list[tuple[str, str]]]:
    """type → [(field, what the page says of its kind)] for every client message."""
    found: dict[str, list[tuple[str, str]]] = {
        "hello": [
            (NAME.findall(cells[0])[0], cells[1])
            for cells in rows(section("## Authentication: `hello`"))
        ]
    }
    for cells in rows(section("## Requests")):
        described = [
            (m.group(1), m.group(2).strip())
            for m in re.finditer(r"`([A-Za-z_][A-Za-z0-9_]*)`([^,`]*)", cells[1])
        ]
        for mtype in TYPE.findall(cells[0]):
            found[mtype] = described
    return found


def test_every_client_message_is_documented_with_its_fields() -> None:
    docs = requests()
    assert set(docs) == set(COMMANDS)
    for mtype, described in docs.items():
        assert {name for name, _ in described} == set(FIELDS[mtype]), mtype


def _kind_says(spec: Field, said: str) -> bool:
    said = said.strip()
    optional = said.startswith("?") or said.endswith("?") or "optional" in said
    said = said.strip("?").split(",")[0].strip()
    if optional == spec.required:
        return False
    if not said or said == "optional":
        return True
    if said.startswith("{"):
        return spec.kind == "any"
    if said.startswith("str("):
        return spec.kind in ("str", "sdp") and said == f"str({spec.max_len})"
    if said.startswith("int"):
        bounds = re.findall(r"-?\d+", said)
        return spec.kind == "int" and (not bounds or bounds == [str(spec.lo), str(spec.hi)])
    if "/" in said:
        return said.split("/") == list(spec.choices)
    return said == spec.kind


def test_the_kinds_on_the_page_are_the_models() -> None:
    for mtype, described in requests().items():
        for name, said in described:
            spec = FIELDS[mtype][name]
            assert _kind_says(spec, said), f"{mtype}.{name}: page says {said!r}, model {spec}"


# ---- hub events and bus messages -----------------------------------------------------------


def test_every_hub_event_is_documented_with_its_fields() -> None:
    check("## Events (hub → client)", E.HubEvent)


@pytest.mark.parametrize(
    ("heading", "union", "tag"),
    [
        ("### Room operations (`room.<session>`)", B.RoomOp, "op"),
        ("### Hub → worker (`media.worker.<worker id>`)", B.WorkerCommand, "type"),
        ("### Worker → hub (`hub.<hub id>`, the `reply_to`)", B.WorkerReply, "type"),
        ("### Recording events (`recording.events`)", B.RecordingEvent, "type"),
    ],
)
def test_every_bus_message_is_documented_with_its_fields(
    heading: str, union: object, tag: str
) -> None:
    check(heading, union, tag)


def test_the_hubs_own_channels_are_documented() -> None:
    docs = documented("### Between hubs")
    for model in (B.QueueChanged, B.Announcement, B.TerminalRevoked):
        mtype = model.model_fields["type"].default
        assert docs.get(mtype) == set(model.model_fields) - {"type"}, mtype


def test_every_union_has_a_json_schema() -> None:
    """The models are what an OpenAPI document or a client generator reads: schemas exist."""
    for union in (ClientMessage, E.HubEvent, B.RoomOp, B.WorkerCommand, B.WorkerReply):
        schema = TypeAdapter(union).json_schema()
        assert schema["discriminator"]["propertyName"] in ("type", "op")
        assert len(schema["oneOf"]) == len(typing.get_args(typing.get_args(union)[0]))
