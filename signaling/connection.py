"""One WebSocket client: a reader loop, a writer task and a bounded outbound queue.

A client that cannot keep up (its queue is full) is disconnected, never buffered without
limit. A client silent for longer than the heartbeat timeout is dropped. Messages beyond the
per-connection rate are refused with ``rate_limited``; a client that keeps flooding is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from aiohttp import WSCloseCode, web

from records.principals import Principal

logger = logging.getLogger(__name__)


class Connection:
    """A connected client and its outbound queue."""

    def __init__(
        self, ws: web.WebSocketResponse, conn_id: str, remote: str, queue_size: int
    ) -> None:
        self.ws = ws
        self.id = conn_id
        self.remote = remote
        self.principal: Principal | None = None
        self.participants: dict[str, str] = {}  # session id → participant id
        self.watching_queue: frozenset[int] = frozenset()  # reception unit ids
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(queue_size)
        self._writer: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._tokens: float | None = None  # None: a full bucket (the first message passes)
        self._last = 0.0
        self.violations = 0
        self.refused_anonymous = False  # a request before hello was refused (and audited)

    def start(self) -> None:
        """Start the writer task (owned by this connection, awaited in :meth:`close`)."""
        self._writer = asyncio.create_task(self._write(), name=f"ws-writer-{self.id}")

    def send(self, message: dict[str, Any]) -> bool:
        """Queue a message; a full queue means the client fell behind: it is disconnected."""
        if self.closed.is_set():
            return False
        try:
            self._queue.put_nowait(json.dumps(message, ensure_ascii=False, separators=(",", ":")))
        except asyncio.QueueFull:
            logger.warning("ws %s: outbound queue full, disconnecting slow client", self.id)
            self.close_reason = "slow_client"
            self.closed.set()
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self._queue.put_nowait(None)
            return False
        return True

    def allow(self, rate: float) -> bool:
        """Token bucket: ``rate`` messages per second, bursts of twice that."""
        now = time.monotonic()
        burst = rate * 2
        if self._tokens is None:
            self._tokens = burst
        else:
            self._tokens = min(burst, self._tokens + (now - self._last) * rate)
        self._last = now
        if self._tokens < 1:
            self.violations += 1
            return False
        self._tokens -= 1
        return True

    async def _write(self) -> None:
        try:
            while True:
                text = await self._queue.get()
                if text is None:
                    break
                await self.ws.send_str(text)
        except (ConnectionResetError, RuntimeError) as exc:
            logger.debug("ws %s: writer stopped: %s", self.id, exc)
        finally:
            self.closed.set()
            if not self.ws.closed:
                code = (
                    WSCloseCode.POLICY_VIOLATION
                    if self.close_reason == "slow_client"
                    else WSCloseCode.OK
                )
                with contextlib.suppress(ConnectionResetError, RuntimeError):
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
            except TimeoutError:
                self._writer.cancel()
                await asyncio.gather(self._writer, return_exceptions=True)
        if not self.ws.closed:
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await self.ws.close()
