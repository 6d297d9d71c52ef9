"""Two real hub processes on one Redis: one room across both; killing one hub.

Hub A and hub B are ``petition-gateway serve`` processes sharing a database (PostgreSQL when
``GATEWAY_TEST_POSTGRES_URL`` is set, else one SQLite file) and a Redis with a prefix of their
own. A convener on A and a member on B meet in a conference and chat; then A is SIGKILLed:
A's participant is recorded as having left (``hub_lost``) once A's registry entry expired and
the resume window passed, and B goes on using the session.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from records import sessions
from records.store import Store
from tests.helpers import PASSWORD, T, WsClient, need_service, postgres_schema_url, seed_store

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SECRET = "cluster-test-secret-" + "y" * 32
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[str]:
    if os.environ.get("GATEWAY_TEST_POSTGRES_URL"):
        url, drop = await postgres_schema_url()
        try:
            yield url
        finally:
            await drop()
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'cluster.db'}"


class HubProcess:
    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = log
        self.env = {
            **env,
            "GATEWAY_SERVER_HUB_ID": name,
            "GATEWAY_SERVER_PORT": str(self.port),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "--no-migrate"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def ready(self, http: aiohttp.ClientSession) -> None:
        async with asyncio.timeout(30 * T):
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    pytest.fail(f"{self.name} exited: {self.log.read_text()[-3000:]}")
                try:
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


async def login(http: aiohttp.ClientSession, hub: HubProcess, username: str) -> dict[str, str]:
    async with http.post(
        f"{hub.url}/api/login", json={"username": username, "password": PASSWORD}
    ) as resp:
        assert resp.status == 200, await resp.text()
        cookie = resp.cookies["pg_session"].value
    http.cookie_jar.clear()
    return {"Cookie": f"pg_session={cookie}"}


async def ws_to(http: aiohttp.ClientSession, hub: HubProcess, headers: dict[str, str]) -> WsClient:
    client = WsClient(await http.ws_connect(f"{hub.url}/ws", headers=headers))
    client.hello = await client.request({"type": "hello", "id": "h"})
    assert client.hello["type"] == "result", client.hello
    return client


async def test_two_hubs_serve_one_room_and_survive_losing_one(
    tmp_path: Path, database: str
) -> None:
    redis_url = need_service("GATEWAY_TEST_REDIS_URL", "Redis")
    store = Store(database)
    await store.start(migrate=True)
    seed = await seed_store(store)
    await store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") or "_TEST_" in k}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "GATEWAY_DATABASE_URL": database,
            "GATEWAY_REDIS_URL": redis_url,
            "GATEWAY_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:10]}",
            "GATEWAY_MEDIA_IN_PROCESS_WORKER": "false",
            "GATEWAY_SECURITY_SECRET_KEY": SECRET,
            "GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GATEWAY_SIGNALING_RESUME_WINDOW_S": "2",
            "GATEWAY_SERVER_LOG_LEVEL": "WARNING",
        }
    )
    hub_a = HubProcess("hub-a", env, tmp_path / "hub-a.log")
    hub_b = HubProcess("hub-b", env, tmp_path / "hub-b.log")
    hub_a.start()
    hub_b.start()
    store = Store(database)
    await store.start(migrate=False)
    try:
        async with aiohttp.ClientSession() as http:
            await hub_a.ready(http)
            await hub_b.ready(http)
            convener = await ws_to(http, hub_a, await login(http, hub_a, "leader"))
            created = await convener.call(
                "session.create",
                kind="conference",
                title="跨级会商",
                unit_id=seed.units["QX-DFJD"],
            )
            sid = created["session"]["id"]
            convener_pid = (await convener.call("session.join", session=sid))["participant"]["id"]
            member = await ws_to(http, hub_b, await login(http, hub_b, "dongfeng"))
            joined = await member.call("session.join", session=sid)
            member_pid = joined["participant"]["id"]
            assert {p["id"] for p in joined["participants"]} == {convener_pid, member_pid}

            seen = await convener.event("participant.joined", session=sid, wait=5 * T)
            while seen["participant"]["id"] != member_pid:
                seen = await convener.event("participant.joined", session=sid, wait=5 * T)
            await convener.call("chat.send", session=sid, text="A 到 B")
            await member.event("chat.message", session=sid, text="A 到 B")
            await member.call("chat.send", session=sid, text="B 到 A")
            await convener.event("chat.message", session=sid, text="B 到 A")

            async with store.transaction() as tx:
                s = await sessions.get_session(tx, sid)
            hubs = {p.id: p.hub_id for p in s.participants}
            assert hubs == {convener_pid: "hub-a", member_pid: "hub-b"}

            assert hub_a.proc is not None
            hub_a.proc.send_signal(signal.SIGKILL)
            hub_a.proc.wait(5)
            # registry entry expires after 5 s, then the 2 s resume window, then the reaper (1 s)
            left = await member.event(
                "participant.left", session=sid, participant=convener_pid, wait=20 * T
            )
            assert left["reason"] == "hub_lost"
            await asyncio.sleep(1.5)  # announced once, not again on every reaper pass
            assert not [
                e
                for e in member.events
                if e["type"] == "participant.left" and e["participant"] == convener_pid
            ]
            async with store.transaction() as tx:
                s = await sessions.get_session(tx, sid)
                events = await sessions.session_events(tx, sid)
            lost = next(p for p in s.participants if p.id == convener_pid)
            assert lost.left_at is not None
            assert lost.leave_reason == "hub_lost"
            assert next(p for p in s.participants if p.id == member_pid).left_at is None
            assert s.state.value == "live"
            assert [e["data"].get("reason") for e in events if e["event"] == "left"] == ["hub_lost"]

            # B goes on: chat, then end the session
            await member.call("chat.send", session=sid, text="仍然可用")
            await member.event("chat.message", session=sid, text="仍然可用")
            ended: dict[str, Any] = await member.call("session.end", session=sid)
            assert ended["state"] == "ended"
            await member.event("session.ended", session=sid)
            async with store.transaction() as tx:
                s = await sessions.get_session(tx, sid)
            assert s.state.value == "ended"
            assert all(p.left_at is not None for p in s.participants)
            await member.close()
    finally:
        await store.close()
        hub_a.stop()
        hub_b.stop()
