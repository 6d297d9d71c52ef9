"""A malformed-message corpus: one participant must not knock out a room (issue 13).

Every message here is refused with a code on the sender's connection; the sender stays, a
bystander in the same room stays and keeps receiving, and nothing is logged as an error. The
wrong-kind cases are generated from ``signaling.commands.FIELDS``, so a new message type or
field is covered without editing this file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from signaling import protocol as P
from signaling.commands import FIELDS
from tests.helpers import Api, WsClient
from tests.signaling.conftest import LEAK_MARKERS
from web import keys

SID = "abc123"  # replaced by the room's session id in every corpus message

#: a valid value for every field of every type (the corpus spoils one field at a time)
VALID: dict[str, Any] = {
    "token": "pgt_x",
    "resume": "r",
    "lang": "zh",
    "category": "housing",
    "to_leader": False,
    "session": SID,
    "rating": 3,
    "kind": None,  # per type, below
    "title": "t",
    "unit_id": 1,
    "lobby": False,
    "record": True,
    "outcome": "o",
    "item_id": "IT1",
    "participant": "p1",
    "muted": True,
    "raised": True,
    "text": "hi",
    "active": True,
    "sdp": "v=0\r\n",
    "restart": False,
    "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"},
    "announcement": 1,
}


def _valid(mtype: str, name: str, spec: P.Field) -> Any:
    if spec.choices:
        return spec.choices[0]
    return VALID[name]


def _wrong_values(spec: P.Field) -> Iterator[tuple[str, Any]]:
    """Values of the wrong kind (or out of range) for a field."""
    if spec.kind in ("str", "sdp", "id"):
        yield from [("int", 5), ("bool", True), ("float", 1.5), ("list", ["a"]), ("dict", {})]
        yield "too long", "a" * (spec.max_len + 1)
        if spec.kind == "id":
            yield from [("not an id", "../etc"), ("empty", "")]
        if spec.choices:
            yield "not a choice", "nope"
    elif spec.kind == "int":
        yield from [("str", "1"), ("bool", True), ("float", 1.5), ("list", [1]), ("dict", {})]
        yield from [("below", spec.lo - 1), ("above", spec.hi + 1), ("huge", 10**4000)]
    elif spec.kind == "bool":
        yield from [("int", 1), ("str", "true"), ("list", []), ("dict", {"a": 1})]
    elif spec.kind == "any":
        yield from [("int", 1), ("str", "c"), ("list", []), ("bad inner", {"candidate": 5})]


def wrong_kind_corpus() -> Iterator[tuple[str, str, str]]:
    """(case name, raw message, expected code) for every type x field x wrong kind."""
    for mtype, schema in sorted(FIELDS.items()):
        base = {name: _valid(mtype, name, spec) for name, spec in schema.items()}
        for name, spec in schema.items():
            for label, wrong in _wrong_values(spec):
                msg = {"type": mtype, "id": "w", **base, name: wrong}
                yield f"{mtype}.{name}={label}", json.dumps(msg), P.BAD_MESSAGE
        yield (
            f"{mtype}+unknown field",
            json.dumps({"type": mtype, "id": "w", **base, "x": 1}),
            (P.BAD_MESSAGE),
        )


NESTED_40 = "[" * 40 + "]" * 40
NESTED_900 = "[" * 900 + "]" * 900
NESTED_DICT = '{"a":' * 5000 + "1" + "}" * 5000

#: (case name, raw message, expected code): text, nesting and numbers
HAND_CORPUS: list[tuple[str, str | bytes, str]] = [
    # lone surrogates (JSON escapes decode to str that UTF-8 cannot encode)
    (
        "surrogate in chat",
        '{"type":"chat.send","id":"s1","session":"%s","text":"hi \\ud800"}',
        P.BAD_MESSAGE,
    ),
    (
        "low surrogate",
        '{"type":"chat.send","id":"s2","session":"%s","text":"\\udfff"}',
        P.BAD_MESSAGE,
    ),
    ("surrogate in id", '{"type":"ping","id":"\\ud800"}', P.BAD_MESSAGE),
    ("surrogate in key", '{"type":"ping","id":"s3","\\ud800":1}', P.BAD_MESSAGE),
    ("surrogate in type", '{"type":"\\ud800","id":"s4"}', P.BAD_MESSAGE),
    (
        "surrogate in session",
        '{"type":"session.join","id":"s5","session":"\\ud800"}',
        P.BAD_MESSAGE,
    ),
    (
        "surrogate deep",
        '{"type":"media.candidate","session":"%s",'
        '"candidate":{"candidate":"c","sdpMid":"\\udbff"}}',
        P.BAD_MESSAGE,
    ),
    (
        "surrogate in title",
        '{"type":"session.create","id":"s6","kind":"call","title":"\\ud83d"}',
        P.BAD_MESSAGE,
    ),
    (
        "surrogate in sdp",
        '{"type":"media.offer","id":"s7","session":"%s","sdp":"v=0\\udc00"}',
        P.BAD_MESSAGE,
    ),
    # NUL
    (
        "NUL in chat",
        '{"type":"chat.send","id":"n1","session":"%s","text":"a\\u0000b"}',
        P.BAD_MESSAGE,
    ),
    (
        "NUL in title",
        '{"type":"session.create","id":"n2","kind":"call","title":"\\u0000"}',
        P.BAD_MESSAGE,
    ),
    ("NUL in id", '{"type":"ping","id":"\\u0000"}', P.BAD_MESSAGE),
    ("NUL in key", '{"type":"ping","id":"n3","\\u0000":1}', P.BAD_MESSAGE),
    (
        "NUL in outcome",
        '{"type":"session.end","id":"n4","session":"%s","outcome":"\\u0000"}',
        P.BAD_MESSAGE,
    ),
    # nesting
    ("deep list", "[" * 60_000, P.BAD_JSON),
    ("deep list closed", "[" * 30_000 + "]" * 30_000, P.BAD_JSON),
    ("deep field", '{"type":"ping","id":"d1","x":' + NESTED_900 + "}", P.BAD_JSON),
    ("deep id", '{"type":"ping","id":' + NESTED_900 + "}", P.BAD_JSON),
    ("deep objects", NESTED_DICT, P.BAD_JSON),
    ("40 levels", '{"type":"ping","id":"d2","x":' + NESTED_40 + "}", P.BAD_JSON),
    # numbers
    (
        "huge rating",
        '{"type":"visit.rate","id":"h1","session":"%s","rating":1' + "0" * 4000 + "}",
        P.BAD_MESSAGE,
    ),
    (
        "too many digits",
        '{"type":"visit.rate","id":"h2","session":"%s","rating":1' + "0" * 5000 + "}",
        P.BAD_JSON,
    ),
    (
        "float overflow",
        '{"type":"visit.rate","id":"h3","session":"%s","rating":1e400}',
        P.BAD_MESSAGE,
    ),
    ("NaN", '{"type":"visit.rate","id":"h4","session":"%s","rating":NaN}', P.BAD_MESSAGE),
    ("Infinity id", '{"type":"ping","id":Infinity}', P.BAD_MESSAGE),
    ("huge id", '{"type":"ping","id":1' + "0" * 100 + "}", P.BAD_MESSAGE),
    (
        "negative unit",
        '{"type":"session.create","id":"h5","kind":"call","title":"t",'
        '"unit_id":-99999999999999999999}',
        P.BAD_MESSAGE,
    ),
    # not JSON, not an object
    ("not JSON", "{not json", P.BAD_JSON),
    ("empty", "", P.BAD_JSON),
    ("a list", "[1,2]", P.BAD_MESSAGE),
    ("null", "null", P.BAD_MESSAGE),
    # binary frames
    ("binary not UTF-8", b"\xff\xfe\xfd", P.BAD_JSON),
    ("binary CESU surrogate", b'{"type":"ping","id":"\xed\xa0\x80"}', P.BAD_MESSAGE),
    (
        "binary NUL",
        b'{"type":"chat.send","id":"b1","session":"%s","text":"a\\u0000"}',
        P.BAD_MESSAGE,
    ),
    (
        "binary wrong kind",
        b'{"type":"hand.raise","id":"b2","session":"%s","raised":"yes"}',
        P.BAD_MESSAGE,
    ),
]


@pytest.fixture
async def room(
    api_with: Callable[..., Awaitable[Api]],
) -> tuple[Api, str, WsClient, WsClient]:
    """A live call: the sender (its convener) and a bystander, both admitted."""
    api = await api_with(max_messages_per_s=10_000)
    sender = await api.ws(headers=await api.login("leader"))
    sid = (await sender.call("session.create", kind="call", title="t", lobby=False))["session"][
        "id"
    ]
    await sender.call("session.join", session=sid)
    bystander = await api.ws(headers=await api.login("reception"))
    await bystander.call("session.join", session=sid)
    return api, sid, sender, bystander


async def send_raw(ws: WsClient, raw: str | bytes) -> list[dict[str, Any]]:
    """Send one raw frame; everything the hub said up to the reply to a marker ping."""
    if isinstance(raw, bytes):
        await ws.ws.send_bytes(raw)
    else:
        await ws.ws.send_str(raw)
    reply = await ws.request({"type": "ping", "id": "marker"})
    assert reply["type"] == "result", reply
    said, ws.events = ws.events, []
    return said


async def chat_reaches(sender: WsClient, bystander: WsClient, sid: str, text: str) -> None:
    await sender.call("chat.send", session=sid, text=text)
    got = await bystander.event("chat.message", session=sid, text=text)
    assert got["text"] == text


def assert_refused(name: str, said: list[dict[str, Any]], code: str) -> None:
    errors = [m for m in said if m.get("type") == "error"]
    assert [e["code"] for e in errors] == [code], (name, said)
    assert errors[0]["message"], (name, said)
    assert errors[0]["code"] != P.INTERNAL, (name, said)
    for msg in said:
        text = json.dumps(msg, ensure_ascii=False)
        text.encode()  # every reply can be sent
        assert not any(marker in text for marker in LEAK_MARKERS), (name, msg)


def _fill(raw: str | bytes, sid: str) -> str | bytes:
    if isinstance(raw, bytes):
        return raw.replace(b"%s", sid.encode())
    return raw.replace("%s", sid)


async def test_a_lone_surrogate_in_chat_is_refused_and_the_room_stays(
    room: tuple[Api, str, WsClient, WsClient],
) -> None:
    """Finding 1: it used to close every recipient's socket (UnicodeEncodeError in send_str)."""
    _api, sid, sender, bystander = room
    said = await send_raw(
        sender, _fill('{"type":"chat.send","id":"c","session":"%s","text":"hi \\ud800"}', sid)
    )
    assert_refused("surrogate", said, P.BAD_MESSAGE)
    error = next(m for m in said if m["type"] == "error")
    assert error["id"] == "c"
    assert "U+D800" in error["message"]
    assert "character 3" in error["message"]
    assert "text" in error["message"]
    await chat_reaches(sender, bystander, sid, "still here")


async def test_a_lone_surrogate_in_the_id_is_refused_without_echoing_it(
    room: tuple[Api, str, WsClient, WsClient],
) -> None:
    """Finding 1: the reply echoed the id, which dropped the sender."""
    _api, sid, sender, bystander = room
    said = await send_raw(sender, '{"type":"ping","id":"a\\udc80"}')
    assert_refused("id", said, P.BAD_MESSAGE)
    error = next(m for m in said if m["type"] == "error")
    assert error["id"] is None
    assert "U+DC80" in error["message"]
    await chat_reaches(sender, bystander, sid, "still here")


async def test_deep_nesting_is_bad_json(room: tuple[Api, str, WsClient, WsClient]) -> None:
    """Finding 2: RecursionError in parse dropped the connection with a traceback."""
    _api, sid, sender, bystander = room
    for raw in ("[" * 60_000, '{"type":"ping","id":"d","x":' + NESTED_900 + "}"):
        assert_refused("deep", await send_raw(sender, raw), P.BAD_JSON)
    await chat_reaches(sender, bystander, sid, "still here")


async def test_the_writer_drops_a_message_it_cannot_encode_and_keeps_the_socket(
    room: tuple[Api, str, WsClient, WsClient], caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 1: whatever reaches the writer, one bad message costs only that message."""
    api, sid, sender, bystander = room
    hub = api.app[keys.HUB]
    conns = [c for c in hub.conns.values() if c.principal and c.principal.name == "Reception"]
    assert len(conns) == 1
    conns[0].send({"type": "chat.message", "session": sid, "text": "\ud800"})
    conns[0].send({"type": "bogus", "value": object()})
    await chat_reaches(sender, bystander, sid, "after the bad one")
    assert (await bystander.call("ping"))["at"] > 0
    dropped = [r.getMessage() for r in caplog.records if "dropped a" in r.getMessage()]
    assert len(dropped) == 2, dropped


async def test_the_corpus_is_refused_with_codes_and_nobody_is_dropped(
    room: tuple[Api, str, WsClient, WsClient], caplog: pytest.LogCaptureFixture
) -> None:
    api, sid, sender, bystander = room
    cases = [(n, _fill(raw, sid), code) for n, raw, code in HAND_CORPUS]
    cases += [(n, raw.replace(SID, sid), code) for n, raw, code in wrong_kind_corpus()]
    assert len(cases) > 200
    caplog.set_level(logging.DEBUG)
    for n, (name, raw, code) in enumerate(cases):
        assert_refused(name, await send_raw(sender, raw), code)
        if n % 25 == 0:
            await chat_reaches(sender, bystander, sid, f"after {name}")
    await chat_reaches(sender, bystander, sid, "the end")
    assert len(api.app[keys.HUB].conns) == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]
    assert not any("Traceback" in r.getMessage() for r in caplog.records)
