"""Text no database can store is refused at the edge, alike on SQLite and PostgreSQL (issue 13).

PostgreSQL refuses NUL in text and UTF-8 has no lone surrogates; SQLite stores both. These
used to reach PostgreSQL: ``/api/audit`` filters answered 500 and ``session.create`` titles
``internal_error``, while SQLite accepted them.
"""

from __future__ import annotations

import json

import pytest

from records import sessions
from tests.helpers import Api

NUL = "a\x00b"


@pytest.mark.parametrize(
    "query",
    ["action=a%00b", "object_id=%00", "actor=x%00", "limit=1&a%00=1"],
)
async def test_a_nul_in_a_query_string_is_a_clear_422(api: Api, query: str) -> None:
    admin = await api.login("bureau_admin")
    resp = await api.client.get(f"/api/audit?{query}", headers=admin)
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "invalid"
    assert "NUL" in error["message"]


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        ('{"title": "a\\u0000b", "body": "x"}', "NUL character at character 1"),
        ('{"title": "t", "body": "x \\ud800"}', "lone surrogate U+D800 at character 2"),
        ('{"title": "t", "body": "x", "\\udfff": 1}', "U+DFFF"),
        ('{"title": "t", "body": "x", "extra": [["\\u0000"]]}', "extra[0][0]"),
    ],
)
async def test_a_json_body_with_unstorable_text_is_a_clear_422(
    api: Api, raw: str, what: str
) -> None:
    leader = await api.login("leader")
    resp = await api.client.post(
        "/api/announcements",
        data=raw.encode(),
        headers={**leader, "Content-Type": "application/json"},
    )
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert what in error["message"]
    async with api.seed.store.transaction() as tx:
        assert await sessions.active_announcements(tx, list(api.seed.units.values())) == []


async def test_a_deeply_nested_json_body_is_a_clear_422(api: Api) -> None:
    leader = await api.login("leader")
    for raw in ("[" * 50_000, '{"title": ' + "[" * 100 + "]" * 100 + "}"):
        resp = await api.client.post(
            "/api/announcements",
            data=raw.encode(),
            headers={**leader, "Content-Type": "application/json"},
        )
        assert resp.status == 422, await resp.text()


async def test_a_json_body_over_256_kib_is_413(api: Api) -> None:
    """Finding 11: it was 422, as if the content were wrong rather than too much of it."""
    leader = await api.login("leader")
    body = json.dumps({"title": "t", "body": "x" * (256 * 1024)})
    resp = await api.client.post(
        "/api/announcements", data=body, headers={**leader, "Content-Type": "application/json"}
    )
    assert resp.status == 413, await resp.text()
    assert (await resp.json())["error"]["code"] == "too_large"


@pytest.mark.parametrize("title", [NUL, "x\ud800"])
async def test_a_session_title_with_unstorable_text_is_bad_message(api: Api, title: str) -> None:
    leader = await api.ws(headers=await api.login("leader"))
    reply = await leader.request({"type": "session.create", "kind": "call", "title": title})
    assert reply["code"] == "bad_message", reply
    assert "title" in reply["message"]
    assert (await leader.call("ping"))["at"] > 0
