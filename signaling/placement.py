"""Room placement: each room lives on exactly one live media worker.

The placement of room ``R`` is the lock ``room:R`` on the bus, held by the worker id
(``SET NX`` with the worker id as token; compare-and-delete release). A hub places a room on
the least loaded live worker; a second hub finds the placement already taken and uses it.
"""

from __future__ import annotations

import logging
from typing import Any

from signaling.bus import Bus, Message

logger = logging.getLogger(__name__)

PLACEMENT_TTL_S = 24 * 3600.0


def _key(session_id: str) -> str:
    return f"room:{session_id}"


def workers_only(live: dict[str, Message]) -> dict[str, Message]:
    """Registry entries of media workers (hubs register too, with kind "hub")."""
    return {w: info for w, info in live.items() if info.get("kind") != "hub"}


#: a worker using this much of its core is busy: a new room goes to one that is not, if any
BUSY_CPU_PCT = 80.0


def load_of(info: Message) -> tuple[bool, float, float, float]:
    """Sort key: not busy first, then fewer peers, fewer rooms, less CPU.

    Peers alone mislead: a training's viewer costs a worker about a third of what a recorded
    visit's participant does (0.4-0.5 % against 1.4 % of a core, docs/benchmarks.md), so a
    worker near its core's capacity is avoided whatever its count.
    """

    def num(key: str) -> float:
        value: Any = info.get(key, 0)
        return float(value) if isinstance(value, int | float) else 0.0

    cpu = num("cpu_pct")
    return (cpu >= BUSY_CPU_PCT, num("peers"), num("rooms"), cpu)


class Placement:
    """Places rooms on workers through the bus."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def current(
        self, session_id: str, *, live: dict[str, Message] | None = None, check: bool = True
    ) -> str | None:
        """The worker holding the room, if any (and, with ``check``, only if it is live)."""
        holder = await self.bus.holder(_key(session_id))
        if holder is None or not check:
            return holder
        live = live if live is not None else await self.bus.live_workers()
        return holder if holder in live else None

    async def place(self, session_id: str) -> tuple[str | None, bool]:
        """The room's worker, placing it when needed; returns (worker, placed_just_now)."""
        live = workers_only(await self.bus.live_workers())
        holder = await self.bus.holder(_key(session_id))
        if holder is not None:
            if holder in live:
                return holder, False
            await self.bus.release(_key(session_id), holder)  # its worker died
        if not live:
            return None, False
        worker = min(live, key=lambda w: load_of(live[w]))
        if await self.bus.acquire(_key(session_id), worker, PLACEMENT_TTL_S):
            logger.info("room %s placed on worker %s", session_id, worker)
            return worker, True
        return await self.bus.holder(_key(session_id)), False

    async def release(self, session_id: str, worker: str | None = None) -> None:
        """Forget the placement (room ended, or its worker died)."""
        holder = worker or await self.bus.holder(_key(session_id))
        if holder is not None:
            await self.bus.release(_key(session_id), holder)
