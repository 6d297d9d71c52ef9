from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from records import accounts
from tests.conftest import _api
from tests.helpers import PASSWORD, Api, make_settings
from web.auth import same_origin_path


async def test_login_sets_a_safe_cookie_and_me_answers(api_sqlite: Api) -> None:
    resp = await api_sqlite.client.post(
        "/api/login", json={"username": "reception", "password": PASSWORD}
    )
    assert resp.status == 200
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    me = await (await api_sqlite.client.get("/api/me")).json()
    assert me["roles"] == ["reception"]
    async with api_sqlite.seed.store.transaction() as tx:
        log = await accounts.audit_entries(tx, action="login")
    assert log[0].outcome == "ok"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "reception"},
        {"username": 5, "password": "x"},
        {"username": "", "password": "x"},
        {"username": "a" * 65, "password": "x"},
        {"username": "reception", "password": "x" * 300},
        [1, 2],
    ],
)
async def test_bad_login_input_is_a_clear_422(api_sqlite: Api, body: Any) -> None:
    resp = await api_sqlite.client.post("/api/login", json=body)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "invalid"
    assert error["message"]


async def test_not_json_is_refused(api_sqlite: Api) -> None:
    resp = await api_sqlite.client.post("/api/login", data="username=a&password=b")
    assert resp.status == 415


async def test_failed_logins_are_throttled_and_audited(api_sqlite: Api) -> None:
    for _ in range(5):
        resp = await api_sqlite.client.post(
            "/api/login", json={"username": "reception", "password": "wrong password"}
        )
        assert resp.status == 401
    resp = await api_sqlite.client.post(
        "/api/login", json={"username": "reception", "password": PASSWORD}
    )
    assert resp.status == 429  # even the right password waits out the lockout
    async with api_sqlite.seed.store.transaction() as tx:
        log = await accounts.audit_entries(tx, action="login")
    outcomes = [e.outcome for e in log]
    assert outcomes.count("failed") == 5
    assert outcomes[0] == "denied"


async def test_csrf_is_required_for_cookie_writes(api_sqlite: Api) -> None:
    headers = await api_sqlite.login("bureau_admin")
    unit = api_sqlite.seed.units["QX-DFJD-HPSQ"]
    no_csrf = {"Cookie": headers["Cookie"]}
    resp = await api_sqlite.client.post(
        "/api/terminals", json={"unit_id": unit, "name": "t"}, headers=no_csrf
    )
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "csrf"
    resp = await api_sqlite.client.post(
        "/api/terminals", json={"unit_id": unit, "name": "t"}, headers=headers
    )
    assert resp.status == 201


async def test_logout_revokes_the_session(api_sqlite: Api) -> None:
    headers = await api_sqlite.login("reception")
    assert (await api_sqlite.client.get("/api/me", headers=headers)).status == 200
    assert (await api_sqlite.client.post("/api/logout", headers=headers)).status == 200
    assert (await api_sqlite.client.get("/api/me", headers=headers)).status == 401


@pytest.mark.parametrize(
    "path", ["/api/sessions", "/api/me", "/api/audit", "/api/orgs", "/metrics"]
)
async def test_nothing_is_readable_without_authentication(api_sqlite: Api, path: str) -> None:
    resp = await api_sqlite.client.get(path)
    assert resp.status == 401


async def test_official_pages_redirect_to_login(api_sqlite: Api) -> None:
    resp = await api_sqlite.client.get("/console", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/login")


async def test_health_answers_without_login(api_sqlite: Api) -> None:
    resp = await api_sqlite.client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["database"] == "ok"


async def test_metrics_for_admins(api_sqlite: Api) -> None:
    headers = await api_sqlite.login("bureau_admin")
    resp = await api_sqlite.client.get("/metrics", headers=headers)
    assert resp.status == 200
    assert "gateway_ws_connections" in await resp.text()
    reception = await api_sqlite.login("reception")
    assert (await api_sqlite.client.get("/metrics", headers=reception)).status == 403


async def test_api_rate_limit(api_sqlite: Api) -> None:
    statuses = [
        (
            await api_sqlite.client.post("/api/login", json={"username": f"u{i}", "password": "p"})
        ).status
        for i in range(200)
    ]
    assert 429 in statuses


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/console?tab=queue", "/login?next=/console?tab%3Dqueue"),
        ("/%5Cevil.example", "/login"),  # /\evil.example: a browser reads //evil.example
        ("/room%09x", "/login"),  # a tab: URL parsers drop it
    ],
)
async def test_the_login_redirect_names_only_same_origin_paths(
    api_sqlite: Api, path: str, location: str
) -> None:
    """Issue 13, finding 7: the page's own path went into ?next= unchecked and unencoded."""
    resp = await api_sqlite.client.get(path, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    assert resp.headers["Location"] == location


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/console", True),
        ("/room?session=a#b", True),
        ("//evil.example", False),
        ("/\\evil.example", False),
        ("/\\/evil.example", False),
        ("/\t/evil.example", False),
        ("/\n/evil.example", False),
        ("http://evil.example/", False),
        ("javascript:alert(1)", False),
        ("console", False),
        ("", False),
    ],
)
def test_same_origin_paths(target: str, safe: bool) -> None:
    assert (same_origin_path(target) is not None) is safe


async def _try(api: Api, username: str, password: str) -> int:
    resp = await api.client.post("/api/login", json={"username": username, "password": password})
    api.client.session.cookie_jar.clear()  # the next try comes without the login cookie
    return resp.status


async def test_one_persons_typos_do_not_lock_out_the_office_behind_the_address(
    api_sqlite: Api,
) -> None:
    """Issue 13, finding 8: the per-address limit was the per-user one (5)."""
    for _ in range(5):
        assert await _try(api_sqlite, "reception", "typo") == 401
    assert await _try(api_sqlite, "reception", PASSWORD) == 429  # that username waits
    assert await _try(api_sqlite, "leader", PASSWORD) == 200  # a colleague at the next desk


@pytest.fixture
async def api_slow_refill(
    aiohttp_client: Any, tmp_path: Path, sqlite_url: str
) -> AsyncIterator[Api]:
    """The app with failure buckets that refill over a day, not over the default 5 minutes.

    An address's bucket of 30 failures earns one back every 10 s by default
    (config.ratelimit): longer than the test's 37 logins take on a busy machine.
    """
    settings = make_settings(tmp_path, sqlite_url, security={"login_lockout_s": 86400})
    async for api in _api(aiohttp_client, settings):
        yield api


async def test_a_successful_login_does_not_reset_the_address_limit(api_slow_refill: Api) -> None:
    """Issue 13, finding 8: an attacker's own login reset its address's count of guesses."""
    api_sqlite = api_slow_refill
    for n in range(30):
        # spread over usernames, each below its own limit, and sign in between
        assert await _try(api_sqlite, f"victim{n // 4}", "guess") == 401, n
        if n % 4 == 3:
            assert await _try(api_sqlite, "leader", PASSWORD) == 200, n
    assert await _try(api_sqlite, "victim9", "guess") == 429
    resp = await api_sqlite.client.post(
        "/api/login", json={"username": "mediator", "password": PASSWORD}
    )
    assert resp.status == 429  # the address waits, whoever signs in from it
    error = (await resp.json())["error"]
    assert error["code"] == "throttled"
    assert "mediator" in error["message"]
