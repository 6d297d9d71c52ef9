"""Browser tests: the real app (media worker on, loopback ICE) and Debian's headless Chromium.

Chromium runs with a fake camera (moving pattern) and a fake microphone (beeps), so received
video and audio are asserted from ``pc.getStats()`` that the pages expose on
``window.__pg.stats()``. Without /usr/bin/chromium the tests skip, except under CI=true.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from records.store import Store
from tests.helpers import PASSWORD, Seed, make_settings, seed_store
from web import keys

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: scalable time unit for waits (slow CI machines may raise it)
T = float(os.environ.get("GATEWAY_TEST_TIMEOUT_UNIT", "1.0"))
#: GATEWAY_TEST_MEDIA_DEBUG=1 writes every page's console (with the SDPs media.js logs in its
#: debug mode) and the worker's gateway.media DEBUG log to test-artifacts/<test>.*.log
MEDIA_DEBUG = os.environ.get("GATEWAY_TEST_MEDIA_DEBUG") == "1"


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} not installed")
    try:
        import playwright.async_api  # noqa: F401, PLC0415
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but the playwright package is missing")
        pytest.skip("playwright not installed")


@dataclass
class Gateway:
    """The running app: its URL, seed data and store."""

    url: str
    seed: Seed
    app: web.Application

    @property
    def store(self) -> Store:
        return self.app[keys.STORE]


@contextlib.asynccontextmanager
async def served_gateway(
    tmp_path: Path, *, media_worker: bool = True, **sections: dict[str, Any]
) -> AsyncIterator[Gateway]:
    """The real app on 127.0.0.1 (port 0), seeded; ``sections`` override the test settings."""
    _need_chromium()
    from gateway.app import create_app  # noqa: PLC0415

    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    sections.setdefault("signaling", {"resume_window_s": 20, "heartbeat_timeout_s": 15})
    settings = make_settings(tmp_path, url, **sections)
    store = Store(settings.database_url)
    await store.start(migrate=True)
    seed = await seed_store(store)
    await store.close()
    app = create_app(settings, media_worker=media_worker)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    seed.store = app[keys.STORE]
    try:
        yield Gateway(str(server.make_url("")).rstrip("/"), seed, app)
    finally:
        await server.close()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """The real app with the in-process media worker, on 127.0.0.1, seeded."""
    async with served_gateway(
        tmp_path, media={"in_process_worker": True, "ice_loopback_only": True}
    ) as gw:
        yield gw


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for the test; contexts are separate users."""
    _need_chromium()
    from playwright.async_api import async_playwright  # noqa: PLC0415

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


Open = Callable[..., Awaitable[Any]]


@pytest.fixture
def media_debug(request: pytest.FixtureRequest) -> Any:
    """In debug mode: the gateway.media DEBUG log of the test in test-artifacts/."""
    if not MEDIA_DEBUG:
        yield None
        return
    ARTIFACTS.mkdir(exist_ok=True)
    name = request.node.name
    handler = logging.FileHandler(ARTIFACTS / f"{name}.server.log", mode="w")
    handler.setFormatter(logging.Formatter("%(created).3f %(name)s %(message)s"))
    media = logging.getLogger("gateway.media")
    level = media.level
    media.setLevel(logging.DEBUG)
    media.addHandler(handler)
    console: list[str] = []
    try:
        yield console
    finally:
        media.removeHandler(handler)
        media.setLevel(level)
        handler.close()
        (ARTIFACTS / f"{name}.console.log").write_text("\n".join(console), encoding="utf-8")


@pytest.fixture
async def open_page(browser: Any, gateway: Gateway, media_debug: Any) -> AsyncIterator[Open]:
    """``await open_page(path, login=username)`` → a page in its own context."""
    contexts: list[Any] = []

    async def _open(path: str, *, login: str | None = None, viewport: Any = None) -> Any:
        ctx = await browser.new_context(
            base_url=gateway.url, viewport=viewport or {"width": 1280, "height": 860}
        )
        contexts.append(ctx)
        if media_debug is not None:
            await ctx.add_init_script("localStorage.setItem('pg.debug', '1')")
        if login:
            resp = await ctx.request.post(
                "/api/login", data={"username": login, "password": PASSWORD}
            )
            assert resp.ok, await resp.text()
        page = await ctx.new_page()
        page.on("pageerror", lambda exc: _page_errors.append(f"{path}: {exc}"))
        if media_debug is not None:
            tag = f"{path.split('#')[0]}#{len(contexts)}"
            page.on(
                "console",
                lambda msg: media_debug.append(f"{time.time():.3f} [{tag}] {msg.type}: {msg.text}"),
            )
        await page.goto(path)
        return page

    _page_errors: list[str] = []
    yield _open
    for ctx in contexts:
        await ctx.close()
    assert not _page_errors, _page_errors
