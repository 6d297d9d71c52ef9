"""Property-based: garbage at /ws never crashes the hub, leaks a traceback or corrupts the DB.

Each test runs one app for all its examples (hypothesis + pytest-asyncio); every example opens
a fresh connection, sends a few generated messages, and checks each reply after a ``ping``
that marks the end of what the hub had to say about them.
"""

from __future__ import annotations

import gc
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from records import sessions
from records.enums import SessionState
from signaling import protocol as P
from signaling.commands import FIELDS
from tests.helpers import Api, WsClient
from tests.signaling.conftest import LEAK_MARKERS

HPSQ = "QX-DFJD-HPSQ"
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: text with what PostgreSQL or UTF-8 cannot store (NUL, lone surrogates) now and then
texts = st.text(max_size=40) | st.text(st.sampled_from("a\x00\ud800\udfff"), min_size=1, max_size=8)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
types = st.sampled_from(sorted(FIELDS)) | st.text(max_size=20)
field_names = st.sampled_from(
    sorted({name for schema in FIELDS.values() for name in schema} | {"type", "id"})
)


@st.composite
def shaped_messages(draw: st.DrawFn, known_ids: list[str]) -> dict[str, Any]:
    """A message with a real or fake type and fields of right, wrong or missing types."""
    mtype = draw(types)
    msg: dict[str, Any] = {"type": mtype}
    if draw(st.booleans()):
        msg["id"] = draw(st.text(min_size=1, max_size=70) | st.integers() | json_values)
    schema = FIELDS.get(mtype, {})
    for name, spec in schema.items():
        choice = draw(st.integers(0, 5))
        if choice == 0:
            continue  # missing
        if choice == 1:
            msg[name] = draw(json_values)  # wrong type, most likely
        elif spec.kind == "id":
            msg[name] = draw(st.sampled_from(known_ids) | st.text(max_size=40))
        elif spec.kind == "int":
            msg[name] = draw(st.integers(-10, 2**33))
        elif spec.kind == "bool":
            msg[name] = draw(st.booleans())
        elif spec.choices:
            msg[name] = draw(st.sampled_from(spec.choices) | st.text(max_size=10))
        else:
            msg[name] = draw(st.text(max_size=spec.max_len + 5))
    if draw(st.integers(0, 4)) == 0:
        msg[draw(field_names | st.text(max_size=10))] = draw(json_values)
    return msg


def raw_messages(known_ids: list[str]) -> st.SearchStrategy[str | bytes]:
    return st.one_of(
        shaped_messages(known_ids).map(json.dumps),
        json_values.map(json.dumps),
        st.text(max_size=200),
        st.binary(max_size=200),
        st.integers(65_000, 70_000).map(lambda n: '{"type":"ping","pad":"' + "x" * n + '"}'),
    )


async def say(ws: WsClient, raw: str | bytes, n: int) -> list[dict[str, Any]]:
    """Send one raw message and everything the hub says until the marker ping's reply."""
    if isinstance(raw, bytes):
        await ws.ws.send_bytes(raw)
    else:
        await ws.ws.send_str(raw)
    marker = {"type": "ping", "id": f"marker-{n}"}
    reply = await ws.request(marker)
    assert reply["type"] == "result", reply
    said, ws.events = ws.events, []
    return said


def check_replies(said: list[dict[str, Any]]) -> None:
    for msg in said:
        text = json.dumps(msg, ensure_ascii=False)
        for marker in LEAK_MARKERS:
            assert marker not in text, msg
        assert isinstance(msg.get("type"), str), msg
        if msg["type"] == "error":
            assert msg["code"] in P.ERROR_CODES, msg
            assert msg["message"], msg
            assert msg["code"] != P.INTERNAL, msg


async def check_database(api: Api) -> None:
    async with api.seed.store.transaction() as tx:
        every = await sessions.list_sessions(tx, limit=1000)
        for brief in every:
            s = await sessions.get_session(tx, brief.id)
            assert s.state in SessionState
            for p in s.participants:
                assert p.session_id == s.id
                if p.joined_at and p.left_at:
                    assert p.left_at >= p.joined_at
            joined = [p for p in s.participants if p.joined_at is not None]
            if s.state is SessionState.LIVE:
                assert joined, f"live session {s.id} with nobody who joined"
            if s.state in (SessionState.ENDED, SessionState.CANCELLED):
                assert s.ended_at is not None
                assert all(p.left_at is not None for p in joined), s
            if s.kind.value == "visit":
                assert s.terminal_id is not None


async def known_sessions(api: Api) -> list[str]:
    """A waiting visit and a live conference, so generated ids sometimes hit real sessions."""
    cached: list[str] | None = getattr(api, "_fuzz_sessions", None)
    if cached is not None:
        return cached
    kiosk = await api.ws(token=api.seed.terminals["QX-HHJD-BHSQ"])
    visit = (await kiosk.call("visit.request", category="c"))["session"]["id"]
    leader = await api.ws(headers=await api.login("leader"))
    conf = (await leader.call("session.create", kind="conference", title="t"))["session"]["id"]
    await leader.call("session.join", session=conf)
    ids = [visit, conf]
    api._fuzz_sessions = ids  # type: ignore[attr-defined]
    api._fuzz_clients = [kiosk, leader]  # type: ignore[attr-defined]
    return ids


@pytest.fixture(autouse=True)
def _no_garbage_from_earlier_tests(caplog: pytest.LogCaptureFixture) -> None:
    """Collect what earlier tests left before this one counts logged errors.

    An earlier test's event loop closed with a task still pending is logged by asyncio
    ("Task was destroyed but it is pending!") whenever the garbage collector gets to it,
    which may be during this test's examples.
    """
    gc.collect()
    caplog.clear()


async def run_example(
    api: Api, who: str, raws: list[str | bytes], caplog: pytest.LogCaptureFixture
) -> None:
    if who == "terminal":
        ws = await api.ws(token=api.seed.terminals[HPSQ])
    elif who == "official":
        headers = getattr(api, "_fuzz_headers", None)
        if headers is None:
            headers = await api.login("reception")
            api._fuzz_headers = headers  # type: ignore[attr-defined]
        ws = await api.ws(headers=headers)
    else:
        ws = WsClient(await api.client.ws_connect("/ws"))
    try:
        for n, raw in enumerate(raws):
            check_replies(await say(ws, raw, n))
    finally:
        await ws.close()
    await check_database(api)
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, [r.getMessage() for r in failures]
    # the hub still serves newcomers
    fresh = await api.ws(token=api.seed.terminals[HPSQ])
    assert (await fresh.call("ping"))["at"] > 0
    await fresh.close()


@FUZZ
@given(
    who=st.sampled_from(["nobody", "terminal", "official"]),
    data=st.data(),
)
async def test_garbage_never_crashes_or_leaks(
    api: Api, caplog: pytest.LogCaptureFixture, who: str, data: st.DataObject
) -> None:
    """On SQLite and PostgreSQL: text SQLite stores and PostgreSQL refuses must not get far."""
    ids = await known_sessions(api)
    raws = data.draw(st.lists(raw_messages(ids), min_size=1, max_size=6))
    await run_example(api, who, raws, caplog)


@FUZZ
@given(
    who=st.sampled_from(["terminal", "official"]),
    data=st.data(),
)
async def test_valid_messages_out_of_order_keep_the_database_consistent(
    api: Api, caplog: pytest.LogCaptureFixture, who: str, data: st.DataObject
) -> None:
    """Well-typed requests in any order, on real and fake sessions, on both databases."""
    ids = await known_sessions(api)
    wellformed = st.builds(
        lambda mtype, fields: json.dumps({"type": mtype, "id": "x", **fields}),
        st.sampled_from(sorted(t for t in FIELDS if t != "hello")),
        st.fixed_dictionaries(
            {},
            optional={
                "session": st.sampled_from(ids) | st.sampled_from(["abc", "0" * 32]),
                "participant": st.sampled_from(["abc", "0" * 32]),
                "category": st.sampled_from(["housing", "labour"]),
                "rating": st.integers(1, 5),
                "kind": st.sampled_from(["conference", "training", "audio", "mediation"]),
                "raised": st.booleans(),
                "muted": st.booleans(),
                "active": st.booleans(),
                "text": st.text(min_size=1, max_size=20) | texts,
                "title": st.just("t") | texts,
                "item_id": st.just("IT1"),
                "sdp": st.just("v=0\r\nm=audio 9 RTP/AVP 0\r\n"),
            },
        ),
    )
    raws = data.draw(st.lists(wellformed, min_size=1, max_size=8))
    await run_example(api, who, raws, caplog)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", P.BAD_JSON),
        (b"\xff\xfe", P.BAD_JSON),
        ("[1, 2]", P.BAD_MESSAGE),
        ('"hello"', P.BAD_MESSAGE),
        ('{"type": 5, "id": "a"}', P.BAD_MESSAGE),
        ('{"type": "no.such", "id": "a"}', P.UNKNOWN_TYPE),
        ('{"type": "chat.send", "id": "a", "session": "x", "text": 5}', P.BAD_MESSAGE),
        ('{"type": "chat.send", "session": "x", "text": "a"}', P.BAD_MESSAGE),  # no id
        ('{"type": "visit.rate", "id": "a", "session": "x", "rating": 9}', P.BAD_MESSAGE),
        ('{"type": "visit.rate", "id": "a", "session": "x", "rating": true}', P.BAD_MESSAGE),
        ('{"type": "ping", "id": "a", "extra": 1}', P.BAD_MESSAGE),
        ('{"type": "session.join", "id": "a", "session": "../etc"}', P.BAD_MESSAGE),
        ('{"type": "ping", "id": "' + "i" * 65 + '"}', P.BAD_MESSAGE),
        ('{"type": "ping", "id": "a", "pad": "' + "x" * 70_000 + '"}', P.TOO_LARGE),
        ('{"type": "session.join", "id": "a", "session": "abc"}', P.NOT_FOUND),
        ('{"type": "hello", "id": "a"}', P.INVALID_STATE),  # a second hello
        ('{"type": "queue.watch", "id": "a"}', P.FORBIDDEN),  # a terminal
    ],
)
async def test_each_kind_of_bad_message_gets_its_code(
    api_sqlite: Api, raw: str | bytes, code: str
) -> None:
    ws = await api_sqlite.ws(token=api_sqlite.seed.terminals[HPSQ])
    said = await say(ws, raw, 0)
    check_replies(said)
    errors = [m for m in said if m["type"] == "error"]
    assert [e["code"] for e in errors] == [code], said
    if code == P.NOT_FOUND:
        assert "abc" in errors[0]["message"]  # the offending value is quoted
