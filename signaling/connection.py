"""One WebSocket client: a reader loop, a writer task and a bounded outbound queue.

A client that cannot keep up (its queue is full) is disconnected, never buffered without
limit: its TCP connection is aborted at once (a client that does not read would not read a
close frame either). A client silent for longer than the heartbeat timeout is dropped.
Messages beyond the per-connection rate are refused with ``rate_limited``; a client that keeps
flooding is closed. Replies to a client's own requests apply backpressure to its reader
instead of counting as falling behind (see :meth:`Connection.backpressure`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, web
from pydantic_core import PydanticSerializationError

from config.ratelimit import TokenBucket
from records.principals import Principal
from signaling.events import EventModel

logger = logging.getLogger(__name__)

SLOW_CLIENT = "slow_client"
#: another connection of the same principal took this one's memberships (resume, rejoin)
SUPERSEDED = "superseded"
#: the close code for :data:`SUPERSEDED` (private range): clients must not reconnect on it,
#: or two tabs would take the membership from each other forever
SUPERSEDED_CLOSE_CODE = 4001

#: WebSocket close code per close reason (anything else: policy violation, 1008)
CLOSE_CODES: dict[str, int] = {
    "": WSCloseCode.OK,
    "hub shutting down": WSCloseCode.GOING_AWAY,
    SUPERSEDED: SUPERSEDED_CLOSE_CODE,
}


class Connection:
    """A connected client and its outbound queue.

    Args:
        ws: the prepared WebSocket response.
        conn_id: a random id (logs, resume tokens).
        remote: the peer address (audit log).
        queue_size: the bound of the outbound queue.
        abort: drops the TCP connection at once (the request's ``transport.abort``).
        on_error: called with the wire code of every error message sent (metrics).
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        conn_id: str,
        remote: str,
        queue_size: int,
        abort: Callable[[], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.ws = ws
        self.id = conn_id
        self.remote = remote
        self.principal: Principal | None = None
        self.participants: dict[str, str] = {}  # session id → participant id
        self.watching_queue: frozenset[int] = frozenset()  # reception unit ids
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(queue_size)
        self._writer: asyncio.Task[None] | None = None
        self._abort = abort
        self._on_error = on_error
        self.closed = asyncio.Event()
        self._drained = asyncio.Event()  # set by the writer each time it sent a message
        self.close_reason = ""
        self._bucket: TokenBucket | None = None  # made full by the first message
        self.violations = 0
        self.refused_anonymous = False  # a request before hello was refused (and audited)

    def start(self) -> None:
        """Start the writer task (owned by this connection, awaited in :meth:`close`)."""
        self._writer = asyncio.create_task(self._write(), name=f"ws-writer-{self.id}")

    @property
    def queued(self) -> int:
        """Messages waiting in the outbound queue."""
        return self._queue.qsize()

    def send(self, message: EventModel | dict[str, Any]) -> bool:
        """Queue an event (a model of :mod:`signaling.events`) or a reply.

        A full queue means the client fell behind: it is disconnected.
        """
        if self.closed.is_set():
            return False
        try:
            if isinstance(message, EventModel):
                text = message.model_dump_json()
            else:
                if self._on_error is not None and message.get("type") == "error":
                    self._on_error(str(message.get("code")))
                text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError, PydanticSerializationError) as exc:
            # a bug upstream: this message is lost, the client and everyone else are not
            logger.error(
                "ws %s: dropped a %s message that is not JSON: %s",
                self.id,
                type(message).__name__ if isinstance(message, EventModel) else message.get("type"),
                exc,
            )
            return True
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            logger.warning(
                "ws %s: outbound queue of %d full, disconnecting slow client",
                self.id,
                self._queue.maxsize,
            )
            self._drop_slow()
            return False
        return True

    def _drop_slow(self) -> None:
        """Give up on a client that does not read: abort its connection, wake everyone."""
        if not self.close_reason:
            self.close_reason = SLOW_CLIENT
        self.closed.set()
        self._drained.set()
        # the writer may sit in send_str waiting for a drain that never comes: aborting the
        # transport ends that wait with a connection error and ends the reader's receive()
        if self._abort is not None:
            self._abort()
        elif self._writer is not None:
            self._writer.cancel()

    async def backpressure(self, patience_s: float) -> None:
        """Wait while half the outbound queue is taken, before reading the next request.

        Replies to a client's own requests must not count against it: a healthy client that
        sends a burst is slowed down here, not disconnected. Only pushes from elsewhere (room
        events) can overflow the queue. A client that does not drain within ``patience_s`` is
        too slow and is disconnected.
        """
        half = self._queue.maxsize // 2
        if self._queue.qsize() <= half:
            return
        try:
            async with asyncio.timeout(patience_s):
                while self._queue.qsize() > half and not self.closed.is_set():
                    self._drained.clear()
                    await self._drained.wait()
        except TimeoutError:
            logger.warning("ws %s: replies not read for %.0f s, disconnecting", self.id, patience_s)
            self._drop_slow()

    def allow(self, rate: float) -> bool:
        """Token bucket (``config.ratelimit``): ``rate`` messages a second, bursts of twice that."""
        now = time.monotonic()
        if self._bucket is None:
            self._bucket = TokenBucket(rate, rate * 2, now)
        if self._bucket.take(1, now):
            return True
        self.violations += 1
        return False

    async def _write(self) -> None:
        try:
            while True:
                text = await self._queue.get()
                if text is None or self.close_reason == SLOW_CLIENT:
                    break
                try:
                    await self.ws.send_str(text)
                except UnicodeEncodeError as exc:
                    # text that UTF-8 cannot carry (a lone surrogate) got past the parser: drop
                    # this one message, keep the socket (nothing was written: aiohttp encodes
                    # the whole frame before writing it)
                    logger.error(
                        "ws %s: dropped a message UTF-8 cannot encode (%s): %.80r",
                        self.id,
                        exc.reason,
                        text,
                    )
                self._drained.set()
        except (ConnectionError, RuntimeError) as exc:
            logger.debug("ws %s: writer stopped: %s", self.id, exc)
        finally:
            self.closed.set()
            self._drained.set()
            if not self.ws.closed and self.close_reason != SLOW_CLIENT:
                code = CLOSE_CODES.get(self.close_reason, WSCloseCode.POLICY_VIOLATION)
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.close(code=code, message=self.close_reason.encode()[:120])

    async def close(self, reason: str = "") -> None:
        """Flush what is queued, close the socket and await the writer; idempotent."""
        if reason and not self.close_reason:
            self.close_reason = reason
        if not self.closed.is_set():
            self.closed.set()
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)
        if self._writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), timeout=2)
            except asyncio.CancelledError:
                self._writer.cancel()  # we are cancelled ourselves: do not leave it pending
                raise
            except TimeoutError:
                # the client stopped reading mid-close: do not wait for it any longer
                self._drop_slow()
                self._writer.cancel()
                await asyncio.gather(self._writer, return_exceptions=True)
        if not self.ws.closed and self.close_reason != SLOW_CLIENT:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.close()
