"""The composition root: ``create_app(settings)`` builds the aiohttp application.

Long-lived services live under typed ``web.AppKey``s (web/keys.py) and are started and closed
in ``cleanup_ctx`` order; teardown runs in reverse: the hub stops accepting and tells its
clients, the in-process media worker closes its peer connections and finalises recordings,
then the bus and the database close (CONVENTIONS habit 3).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from config.ratelimit import Buckets, FailureLimit
from config.settings import Settings, with_data_key, with_secret_key
from gateway.recordings import RecordingsKeeper
from records import items as items_records
from records.calendar import load_calendar
from records.keyring import DataKeyring
from records.notices import imported_notices
from records.store import Store
from signaling.bus import Bus, create_bus
from signaling.hub import Hub
from web import apidoc, items, keys, pages, routes
from web.auth import PRINCIPAL, auth_middleware, rate_limit_middleware
from web.errors import error_middleware
from web.input import text_middleware
from web.metrics import Metrics

if TYPE_CHECKING:
    from gateway.worker import Worker

logger = logging.getLogger(__name__)

BUS = web.AppKey("bus", Bus)
HUB = web.AppKey("signaling_hub", Hub)
WORKER: web.AppKey[Worker | None] = web.AppKey("media_worker")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        "connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; object-src 'none'; "
        "frame-ancestors 'none'"
    ),
    "Permissions-Policy": (
        "camera=(self), microphone=(self), display-capture=(self), geolocation=(self)"
    ),
}


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")


def create_app(
    settings: Settings, *, migrate: bool = True, media_worker: bool | None = None
) -> web.Application:
    """Build the hub application on ``settings``.

    Args:
        settings: the frozen settings.
        migrate: apply database migrations on start (the embedded default does).
        media_worker: run a media worker in this process; defaults to
            ``settings.in_process_worker``.
    """
    settings = with_data_key(with_secret_key(settings))
    keyring = DataKeyring.parse(settings.data_key)  # a bad key stops the start, naming it
    limiter = Buckets(rate=30, burst=120)  # per client address, on /api/
    metrics = Metrics()
    app = web.Application(
        # metrics first: it counts the status the client gets, refusals and errors included
        middlewares=[
            metrics.middleware,
            error_middleware,
            rate_limit_middleware(limiter),
            text_middleware,
            auth_middleware,
        ],
        client_max_size=1024 * 1024,
    )
    app[keys.SETTINGS] = settings
    app[keys.KEYRING] = keyring
    app[keys.THROTTLE] = FailureLimit(
        settings.login_max_failures,
        settings.login_lockout_s,
        max_failures_per_address=settings.login_max_failures_per_address,
    )
    app[keys.METRICS] = metrics
    app.on_response_prepare.append(_security_headers)

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        store = Store(settings.database_url)
        await store.start(migrate=migrate)
        app[keys.STORE] = store
        # Official notices imported into the shared database replace the shipped file of
        # their year (records/notices.py); read at start: restart after an import.
        async with store.transaction() as tx:
            notices = await imported_notices(tx)
            # a hub with a key of its own would seal numbers the other hubs cannot open
            await items_records.check_keyring(tx, keyring)
        app[keys.CALENDAR] = await asyncio.to_thread(load_calendar, settings.holidays_dir, notices)
        yield
        await store.close()

    async def bus_ctx(app: web.Application) -> AsyncIterator[None]:
        bus = create_bus(settings.redis_url, settings.redis_prefix)
        await bus.ping()
        app[BUS] = bus
        app[keys.THROTTLE].use(bus)  # failed attempts count across the cluster
        yield
        app[keys.THROTTLE].use(None)
        await bus.close()

    async def recordings_ctx(app: web.Application) -> AsyncIterator[None]:
        keeper = RecordingsKeeper(settings, app[keys.STORE], app[BUS])
        await keeper.start()
        yield
        await keeper.close()

    async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
        run_worker = settings.in_process_worker if media_worker is None else media_worker
        worker = None
        if run_worker:
            from gateway.worker import build_worker  # noqa: PLC0415  (aiortc loads only when used)

            worker = build_worker(
                settings, app[BUS], f"worker-{settings.hub_id or 'local'}-{secrets.token_hex(3)}"
            )
            await worker.start()
        app[WORKER] = worker
        yield
        if worker is not None:
            await worker.close()

    async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
        hub = Hub(
            settings,
            app[keys.STORE],
            app[BUS],
            calendar=app[keys.CALENDAR],
            on_join=metrics.observe_join,
        )
        await hub.start()
        app[keys.HUB] = hub
        app[HUB] = hub
        metrics.watch_hub(hub.counters, hub.gauges)
        yield
        await hub.close()

    # started in this order, closed in reverse: hub first, then media (which finalises the
    # recordings), then the keeper stores their last events, then bus and database close
    app.cleanup_ctx.extend([store_ctx, bus_ctx, recordings_ctx, worker_ctx, hub_ctx])

    async def ws(request: web.Request) -> web.StreamResponse:
        hub = request.app[HUB]
        return await hub.handle_ws(request, request.get(PRINCIPAL))

    app.router.add_get("/ws", ws)
    app.router.add_routes(routes.routes)
    app.router.add_routes(items.routes)
    app.router.add_routes(apidoc.routes)
    app[apidoc.DOCUMENT] = {}
    pages.add_routes(app)
    return app


async def run_app(app: web.Application, settings: Settings, ssl_context: Any = None) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=ssl_context)
    await site.start()
    # everything built at start lives for the process: keep it out of the collector's full
    # passes, which otherwise take tens of milliseconds with thousands of connections open
    gc.collect()
    gc.freeze()
    scheme = "https" if ssl_context else "http"
    # printed once the port accepts connections (scripts and tests wait for this line)
    print(
        f"petition-gateway listening on {scheme}://{settings.host}:{settings.port}/  (Ctrl+C stops)"
    )
    sys.stdout.flush()
    try:
        await stop.wait()
        logger.info("stopping: closing connections, media and recordings")
    finally:
        await runner.cleanup()
