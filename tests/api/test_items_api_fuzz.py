"""The OpenAPI document (generated from the routes' declared operations) covers every /api
route, and schemathesis finds no 500 and no answer that breaks the document, against the real
app served on 127.0.0.1 (SQLite), signed in as a leader of the district petition bureau.

The number of examples per operation is ``GATEWAY_FUZZ_EXAMPLES`` (default 6). The server runs
behind a pretend proxy so each request can carry its own ``X-Forwarded-For``: the per-address
rate limiter stays on but does not turn the whole run into 429s.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web

from records.store import Store
from tests.api.items_api_support import item_body
from tests.helpers import PASSWORD, Api, make_settings, seed_store
from web.apidoc import build_document

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

EXAMPLES = int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "6"))
#: would sign the fuzzer out
SKIP = {("POST", "/api/logout")}


def _route_set(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/api/") and route.method not in ("HEAD", "OPTIONS"):
            out.add((route.method, path))
    return out


async def test_the_document_covers_every_api_route(api_sqlite: Api) -> None:
    doc = build_document(api_sqlite.app)
    documented = {
        (method.upper(), path)
        for path, ops in doc["paths"].items()
        for method in ops
        if path.startswith("/api/")
    }
    assert _route_set(api_sqlite.app) == documented
    headers = await api_sqlite.login("reception")
    resp = await api_sqlite.client.get("/api/openapi.json", headers=headers)
    served = await resp.json()
    assert served["openapi"] == "3.1.0"
    assert served == doc
    assert set(served["components"]["securitySchemes"]) == {"cookieAuth", "csrfToken", "bearerAuth"}


class _Server:
    """The real app in a thread of its own (schemathesis calls it synchronously)."""

    def __init__(self, tmp_path: Path) -> None:
        self.settings = make_settings(
            tmp_path,
            f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}",
            server={"behind_https_proxy": True},
        )
        self.url = ""
        self.seed_units: dict[str, int] = {}
        self.seed_accounts: dict[str, int] = {}
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-server", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(60):
            raise TimeoutError("the server did not start in 60 s")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from gateway.app import create_app  # noqa: PLC0415

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        store = Store(self.settings.database_url)
        await store.start(migrate=True)
        seed = await seed_store(store)
        await store.close()
        self.seed_units, self.seed_accounts = seed.units, seed.account_ids
        runner = web.AppRunner(create_app(self.settings))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[_Server]:
    server = _Server(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _prepare(server: _Server, http: requests.Session) -> tuple[dict[str, str], dict[str, Any]]:
    """Sign in, and make one item, backlog case and attachment for the fuzzer to act on."""
    resp = http.post(f"{server.url}/api/login", json={"username": "leader", "password": PASSWORD})
    resp.raise_for_status()
    headers = {
        "Cookie": f"pg_session={resp.cookies['pg_session']}",
        "X-CSRF-Token": resp.json()["csrf_token"],
    }
    fake_api: Any = type("A", (), {"seed": type("S", (), {"units": server.seed_units})()})()
    body = item_body(fake_api, "QX-XFJ")
    resp = http.post(f"{server.url}/api/items", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    item_id = resp.json()["item"]["id"]
    resp = http.post(
        f"{server.url}/api/items/{item_id}/backlog",
        json={
            "leader_account_id": server.seed_accounts["leader"],
            "team": "专班",
            "resolution_plan": "方案",
            "stability_plan": "措施",
            "ledger": "台账",
            "unit_ids": [server.seed_units["QX-XFJ"]],
        },
        headers=headers,
    )
    assert resp.status_code == 201, resp.text
    case_id = resp.json()["id"]
    resp = http.post(
        f"{server.url}/api/upload/items/{item_id}/attachments",
        params={"filename": "scan.png"},
        data=b"\x89PNG\r\n\x1a\n" + bytes(64),
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 201, resp.text
    ids = {"item_id": item_id, "case_id": case_id, "attachment_id": resp.json()["id"]}
    return headers, ids


def test_schemathesis_finds_no_server_error_and_no_schema_violation(live_server: _Server) -> None:
    from hypothesis import HealthCheck, Phase, given, settings  # noqa: PLC0415
    from schemathesis import checks  # noqa: PLC0415

    http = requests.Session()
    headers, ids = _prepare(live_server, http)
    doc = http.get(f"{live_server.url}/api/openapi.json", timeout=30).json()
    # Point path ids at real objects: random ids only ever find 404.
    for ops in doc["paths"].values():
        for op in ops.values():
            for param in op.get("parameters", []):
                if param["in"] == "path" and param["name"] in ids:
                    param["schema"] = {**param["schema"], "enum": [ids[param["name"]]]}
    # The fuzzer is the signed-in official: left to itself it would also invent bearer tokens
    # (correctly answered 401) instead of using the login.
    doc["security"] = [{"cookieAuth": [], "csrfToken": []}]
    schema = schemathesis.openapi.from_dict(doc)
    addresses = (f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in itertools.count(1))
    run_checks = [
        checks.not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_schema_conformance,
    ]
    failures: list[str] = []
    calls = 0
    statuses: collections.Counter[int] = collections.Counter()
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 50
    for operation in operations:
        if (operation.method.upper(), operation.path) in SKIP:
            continue

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            nonlocal calls
            calls += 1
            response = case.call(
                base_url=live_server.url,
                session=http,
                headers={**headers, "X-Forwarded-For": next(addresses)},
                timeout=30,
            )
            statuses[response.status_code] += 1
            case.validate_response(response, checks=run_checks)

        try:
            fuzz()
        # schemathesis reports failures as a BaseExceptionGroup; collect every operation's
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])
    print(f"fuzz: {calls} requests, {len(operations)} operations, {sorted(statuses.items())}")
    assert calls >= len(operations)
    assert statuses[200] + statuses[201] > len(operations)  # not just refusals
    assert not failures, "\n\n".join(failures)

    # The same run must be able to fail: a document that says `state` is a number is caught.
    doc["components"]["schemas"]["Item"]["properties"]["state"] = {"type": "integer"}
    broken = schemathesis.openapi.from_dict(doc)
    op = next(
        r.ok() for r in broken.get_all_operations() if r.ok().path == "/api/items/{item_id}/note"
    )

    @settings(max_examples=3, deadline=None, database=None, derandomize=True)
    @given(case=op.as_strategy())
    def must_fail(case: Any) -> None:
        response = case.call(
            base_url=live_server.url,
            session=http,
            headers={**headers, "X-Forwarded-For": next(addresses)},
            timeout=30,
        )
        case.validate_response(response, checks=run_checks)

    with pytest.raises(BaseExceptionGroup) as caught:
        must_fail()
    assert "is not of type" in "".join(traceback.format_exception(caught.value))
    http.close()
