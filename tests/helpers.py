"""Test helpers: settings, seed data, the API and WebSocket clients, service URLs.

PostgreSQL tests use ``GATEWAY_TEST_POSTGRES_URL`` (CI sets it) with a schema per test; Redis
tests use ``GATEWAY_TEST_REDIS_URL``. Without them the tests skip with the reason, except
under ``CI=true``, where a missing service is a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, web
from aiohttp.test_utils import TestClient

from config.settings import PACKAGE_DIR, Settings, build_settings
from records import accounts
from records.enums import Role
from records.store import Store

IN_CI = os.environ.get("CI") == "true"
EXAMPLE_ORGS = PACKAGE_DIR / "orgs" / "example.toml"
#: a scalable time unit for waits in tests (slow CI machines may raise it)
T = float(os.environ.get("GATEWAY_TEST_TIMEOUT_UNIT", "1.0"))


def need_service(env: str, what: str) -> str:
    """The URL of a test service, or skip (fail under CI) when it is not configured."""
    url = os.environ.get(env)
    if not url:
        if IN_CI:
            pytest.fail(f"CI=true but {env} is not set: {what} tests cannot run")
        pytest.skip(f"{env} not set: no {what} here")
    return url


async def postgres_schema_url() -> tuple[str, Callable[[], Awaitable[None]]]:
    """A fresh PostgreSQL database for one test (URL only, as the app takes it) and its cleanup."""
    import asyncpg  # noqa: PLC0415

    url = need_service("GATEWAY_TEST_POSTGRES_URL", "PostgreSQL")
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    name = "gw_" + uuid.uuid4().hex[:12]
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {url} unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {url} unreachable: {exc}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await conn.close()
    base, _, _db = url.rpartition("/")

    async def drop() -> None:
        c = await asyncpg.connect(dsn)
        try:
            await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await c.close()

    return f"{base}/{name}", drop


def make_settings(tmp_path: Path, database_url: str, **sections: dict[str, Any]) -> Settings:
    """Settings for tests: data under tmp_path, no media worker unless asked for."""
    overrides: dict[str, dict[str, Any]] = {
        "data": {"dir": str(tmp_path / "data")},
        "database": {"url": database_url},
        "security": {"secret_key": "test-secret-key-" + "x" * 32},
        "media": {"in_process_worker": False, "ice_loopback_only": True},
        "signaling": {"resume_window_s": 2, "heartbeat_timeout_s": 15},
    }
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    return build_settings(environ={}, overrides=overrides)


@dataclasses.dataclass
class Seed:
    """The example org tree with an account per role and a terminal per community."""

    store: Store
    units: dict[str, int]
    passwords: dict[str, str]
    account_ids: dict[str, int]
    terminals: dict[str, str]  # community code → device credential
    terminal_ids: dict[str, int]


PASSWORD = "correct horse battery staple"
_PASSWORD_HASH: str | None = None  # hashed once per test run: argon2 is slow on purpose

SEED_ACCOUNTS = {
    # username: (unit code, roles)
    "bureau_admin": ("QX-XFJ", (Role.ADMIN, Role.AUDITOR)),
    "reception": ("QX-XFJ-JDZX", (Role.RECEPTION,)),
    "leader": ("QX-XFJ", (Role.LEADER,)),
    "mediator": ("QX-SFJ", (Role.MEDIATOR,)),
    "trainer": ("QX-XFJ", (Role.TRAINER,)),
    "housing": ("QX-ZJJ", (Role.RECEPTION,)),
    "dongfeng": ("QX-DFJD", (Role.RECEPTION, Role.LEADER)),
    "hehua": ("QX-HHJD", (Role.RECEPTION, Role.LEADER)),
    "heping_agent": ("QX-DFJD-HPSQ", (Role.AGENT,)),
    "binhe_agent": ("QX-HHJD-BHSQ", (Role.AGENT,)),
    "dongfeng_admin": ("QX-DFJD", (Role.ADMIN,)),
}


async def seed_store(store: Store) -> Seed:
    """Import the example tree and create the seed accounts and terminals."""
    await store.import_org_file(EXAMPLE_ORGS)
    units = {code: u.id for code, u in store.tree.by_code.items()}
    ids: dict[str, int] = {}
    terminals: dict[str, str] = {}
    terminal_ids: dict[str, int] = {}
    global _PASSWORD_HASH
    if _PASSWORD_HASH is None:
        _PASSWORD_HASH = await accounts.hash_password(PASSWORD)
    async with store.transaction() as tx:
        for username, (code, roles) in SEED_ACCOUNTS.items():
            acc = await accounts.create_account(
                tx,
                username,
                username.title(),
                PASSWORD,
                units[code],
                roles,
                password_hash=_PASSWORD_HASH,
            )
            ids[username] = acc.id
        for code in ("QX-DFJD-HPSQ", "QX-DFJD-XYSQ", "QX-HHJD-BHSQ"):
            terminal, credential = await accounts.create_terminal(tx, f"{code} kiosk", units[code])
            terminals[code] = credential
            terminal_ids[code] = terminal.id
    return Seed(store, units, {u: PASSWORD for u in SEED_ACCOUNTS}, ids, terminals, terminal_ids)


class Api:
    """The real app over aiohttp's test client, with login helpers."""

    def __init__(self, client: TestClient[web.Request, web.Application], seed: Seed) -> None:
        self.client = client
        self.seed = seed
        self.app = client.server.app
        self._csrf: dict[str, str] = {}
        self._cookies: dict[str, Any] = {}

    async def login(self, username: str) -> dict[str, str]:
        """Log in and return headers (cookie + CSRF) for that official."""
        self.client.session.cookie_jar.clear()
        resp = await self.client.post(
            "/api/login", json={"username": username, "password": PASSWORD}
        )
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        cookie = resp.cookies["pg_session"].value
        self.client.session.cookie_jar.clear()
        return {"Cookie": f"pg_session={cookie}", "X-CSRF-Token": body["csrf_token"]}

    def terminal(self, code: str) -> dict[str, str]:
        """Headers of a community terminal."""
        return {"Authorization": f"Bearer {self.seed.terminals[code]}"}

    async def ws(self, headers: dict[str, str] | None = None, token: str | None = None) -> WsClient:
        """Open /ws and say hello (with the cookie in headers, or a token)."""
        ws = await self.client.ws_connect("/ws", headers=headers or {})
        client = WsClient(ws)
        hello: dict[str, Any] = {"type": "hello", "id": "h"}
        if token:
            hello["token"] = token
        client.hello = await client.request(hello)
        return client


class WsClient:
    """A test WebSocket client that keeps events apart from replies."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.hello: dict[str, Any] = {}
        self._n = 0

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def request(self, message: dict[str, Any], wait: float = 5 * T) -> dict[str, Any]:
        """Send a request and return its reply (result or error); events are kept."""
        if "id" not in message:
            self._n += 1
            message = {**message, "id": f"r{self._n}"}
        await self.send(message)
        async with asyncio.timeout(wait):
            while True:
                msg = await self._next()
                if msg.get("type") in ("result", "error") and msg.get("id") == message["id"]:
                    return msg
                self.events.append(msg)

    async def call(self, mtype: str, **fields: Any) -> dict[str, Any]:
        """A request that must succeed; returns its data."""
        reply = await self.request({"type": mtype, **fields})
        assert reply["type"] == "result", reply
        data: dict[str, Any] = reply["data"]
        return data

    async def event(self, etype: str, wait: float = 5 * T, **match: Any) -> dict[str, Any]:
        """Wait for an event of ``etype`` whose fields match (earlier ones are searched first)."""
        for i, ev in enumerate(self.events):
            if ev.get("type") == etype and all(ev.get(k) == v for k, v in match.items()):
                return self.events.pop(i)
        async with asyncio.timeout(wait):
            while True:
                ev = await self._next()
                if ev.get("type") == etype and all(ev.get(k) == v for k, v in match.items()):
                    return ev
                self.events.append(ev)

    async def _next(self) -> dict[str, Any]:
        msg = await self.ws.receive()
        if msg.type.name != "TEXT":
            raise ConnectionError(f"websocket closed: {msg.type.name} {msg.data!r} {msg.extra!r}")
        data: dict[str, Any] = json.loads(msg.data)
        return data

    async def close(self) -> None:
        await self.ws.close()
