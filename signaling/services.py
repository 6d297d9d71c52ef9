"""The parts of one hub, as its command handlers and the parts themselves reach each other.

:class:`Services` is built once per :class:`~signaling.hub.Hub` and owns the tasks the parts
start (the hub cancels and awaits them on close). Each part is a module of its own:

- :mod:`signaling.presence`: which connection holds which participant (bind, resume, detach);
- :mod:`signaling.rooms`: this hub's view of its rooms, room events, snapshots, leave and end;
- :mod:`signaling.queue`: the visit queue's positions and the reception consoles' lists;
- :mod:`signaling.relay`: messages to and from the media workers;
- :mod:`signaling.liveness`: this hub's heartbeat, dead hubs and dead workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

import pydantic

from config import errors
from config.settings import Settings
from records import sessions
from records.calendar import HolidayCalendar
from records.principals import Principal
from records.store import Store, SyncConnection, Transaction
from signaling.bus import Bus, Message, Subscription
from signaling.connection import Connection
from signaling.liveness import Liveness
from signaling.placement import Placement
from signaling.presence import Presence
from signaling.queue import VisitQueue
from signaling.relay import MediaRelay
from signaling.rooms import Rooms

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")
_M = TypeVar("_M")


class Services:
    """One hub's settings, store, bus, placement, connections and parts."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus,
        *,
        hub_id: str | None = None,
        calendar: HolidayCalendar | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.calendar = calendar  # for writing session outcomes into petition items
        self.hub_id = hub_id or settings.hub_id or f"hub-{secrets.token_hex(6)}"
        self.placement = Placement(bus, settings.spread_cpu_pct)
        self.conns: dict[str, Connection] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.presence = Presence(self)
        self.rooms = Rooms(self)
        self.queue = VisitQueue(self)
        self.relay = MediaRelay(self)
        self.liveness = Liveness(self)

    def tx(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """A database transaction; on SQLite, one at a time (the store's gate)."""
        return self.store.gated_transaction()

    async def run(
        self,
        fn: Callable[Concatenate[SyncConnection, _P], _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """``store.run`` (one transaction of prebuilt statements), never beside a :meth:`tx`."""
        return await self.store.gated_run(fn, *args, **kwargs)

    async def session(
        self, session_id: str, principal: Principal | None = None
    ) -> sessions.SessionInfo:
        """The session; with ``principal``, only that principal's participant rows.

        The policy decides the same on either (it looks for the principal's own ref), and a
        training with thousands of viewers is not loaded row by row on every request.
        """
        async with self.tx() as tx:
            if principal is not None:
                return await sessions.get_session_for(tx, session_id, principal.ref)
            return await sessions.get_session(tx, session_id)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a task owned by this hub (cancelled and awaited when it closes)."""
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("hub task %s failed", task.get_name(), exc_info=task.exception())

    async def consume(
        self,
        sub: Subscription,
        parse: Callable[[Message], _M],
        handler: Callable[[_M], Awaitable[None]],
    ) -> None:
        """Hand every message of ``sub``, validated by ``parse``, to ``handler``.

        ``parse`` is the channel's adapter (:mod:`signaling.bus_messages`); a message it
        refuses is logged and dropped. One failing message stops nothing.
        """
        async for raw in sub:
            kind = raw.get("type") or raw.get("op")
            try:
                message = parse(raw)
            except pydantic.ValidationError as exc:
                logger.warning("bus message %s dropped: %s", kind, exc)
                continue
            try:
                await handler(message)
            except errors.GatewayError as exc:
                logger.warning("bus message %s failed: %s", kind, exc)
            except Exception:
                logger.exception("bus message handler failed")
