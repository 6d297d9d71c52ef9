"""Helpers for signaling tests over the real app (media worker off)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from records import accounts, sessions
from records.store import Store
from tests.conftest import _api
from tests.helpers import Api, T, make_settings

#: no reply or event may ever carry these (a leaked traceback)
LEAK_MARKERS = ("Traceback", 'File "')


async def session_of(api: Api, session_id: str) -> sessions.SessionInfo:
    async with api.seed.store.transaction() as tx:
        return await sessions.get_session(tx, session_id)


async def events_of(api: Api, session_id: str) -> list[dict[str, Any]]:
    async with api.seed.store.transaction() as tx:
        return await sessions.session_events(tx, session_id)


async def denials(api: Api, actor: str | None = None) -> list[accounts.AuditRecord]:
    async with api.seed.store.transaction() as tx:
        entries = await accounts.audit_entries(tx, actor=actor, limit=1000)
    return [e for e in entries if e.outcome == "denied"]


async def eventually(
    check: Callable[[], Awaitable[bool]], wait: float = 5 * T, step: float = 0.05
) -> None:
    """Poll ``check`` until it holds (for state written by background timers)."""
    async with asyncio.timeout(wait):
        while True:
            if await check():
                return
            await asyncio.sleep(step)


@pytest.fixture
async def api_with(
    aiohttp_client: Any, tmp_path: Path, sqlite_url: str
) -> AsyncIterator[Callable[..., Awaitable[Api]]]:
    """The real app on SQLite with some signaling settings changed (e.g. heartbeat)."""
    gens: list[AsyncGenerator[Api, None]] = []

    async def make(**signaling: Any) -> Api:
        settings = make_settings(tmp_path, sqlite_url, signaling=signaling)
        gen = _api(aiohttp_client, settings)
        gens.append(gen)  # type: ignore[arg-type]
        return await gen.__anext__()

    yield make
    for gen in gens:
        await gen.aclose()


def store_of(api: Api) -> Store:
    return api.seed.store
