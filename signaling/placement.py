"""Room placement: a room's home worker, and which worker serves each participant.

The **home** of room ``R`` is the lock ``room:R`` on the bus, held by the worker id (``SET NX``
with the worker id as token; compare-and-delete release). A hub places a room on the least
loaded live worker; a second hub finds the placement already taken and uses it. Publishers
connect to the home (it records), which makes it their **origin**.

A room may span several workers (cascading, docs/media.md): a viewer goes to the room's
workers while one of them is below ``spread_cpu_pct`` of its core (the home first), else to
the least loaded live worker, which joins the room as a **relay** and pulls the publishers it
needs from their origins (``relay.pull``, ``signaling.relay``). A relay is released (its room
closed) when its last participant leaves. The room's state lives on the bus, so any hub
places any participant: the hashes ``room-peers:R`` (participant → worker), ``room-counts:R``
(worker → participants it serves) and ``room-relays:R`` (relay worker → "relay").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from signaling.bus import Bus, Message

logger = logging.getLogger(__name__)

PLACEMENT_TTL_S = 24 * 3600.0


def _key(session_id: str) -> str:
    return f"room:{session_id}"


def _peers_key(session_id: str) -> str:
    return f"room-peers:{session_id}"


def _relays_key(session_id: str) -> str:
    return f"room-relays:{session_id}"


def _counts_key(session_id: str) -> str:
    return f"room-counts:{session_id}"


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
    cpu = _num(info, "cpu_pct")
    return (cpu >= BUSY_CPU_PCT, _num(info, "peers"), _num(info, "rooms"), cpu)


def _num(info: Message, key: str) -> float:
    value: Any = info.get(key, 0)
    return float(value) if isinstance(value, int | float) else 0.0


@dataclass(frozen=True)
class PeerPlacement:
    """Where a participant's connection goes.

    Attributes:
        worker: the worker serving it.
        new_relay: the worker joined the room just now as a relay: open the room there
            (unrecorded: the publishers' origins record).
        previous: the worker that served its previous connection, if another one.
    """

    worker: str
    new_relay: bool = False
    previous: str | None = None
    #: a publisher's offer on a connection to a relay: it must reconnect to the home (which
    #: records it); nothing was placed
    move_home: bool = False


class Placement:
    """Places rooms and participants on workers through the bus.

    Args:
        bus: the bus.
        spread_cpu_pct: a room's worker this busy (its heartbeat's ``cpu_pct``) takes no more
            of the room's viewers (``media.spread_cpu_pct``); 0 spreads every room over all
            live workers.
    """

    def __init__(self, bus: Bus, spread_cpu_pct: float = 70.0) -> None:
        self.bus = bus
        self.spread_cpu_pct = spread_cpu_pct

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
            # a relay of the room that becomes its home (the old home died) is never released
            await self.bus.hash_delete(_relays_key(session_id), worker)
            return worker, True
        return await self.bus.holder(_key(session_id)), False

    async def release(self, session_id: str, worker: str | None = None) -> None:
        """Forget the placement (room ended, or its worker died)."""
        holder = worker or await self.bus.holder(_key(session_id))
        if holder is not None:
            await self.bus.release(_key(session_id), holder)

    # ------------------------------------------------------------------ participants

    async def place_peer(
        self, session_id: str, participant: str, home: str, *, publishing: bool, restart: bool
    ) -> PeerPlacement:
        """The worker for ``participant``'s offer (the room is placed on ``home``).

        An offer on an existing connection (not ``restart``) stays on its live worker: it
        renegotiates there; but a viewer promoted to publish while on a relay gets
        ``move_home`` (its connection cannot move; a new one goes to the home, which records
        the room). A new connection of a publisher goes to the home (its origin).
        Reads and writes O(workers), not O(participants): a burst of a thousand joins stays cheap.
        """
        previous = await self.bus.hash_get(_peers_key(session_id), participant)
        live = workers_only(await self.bus.live_workers())
        if previous is not None and previous in live and not restart:
            if publishing and previous != home:
                return PeerPlacement(previous, move_home=True)
            return PeerPlacement(previous)
        counts = await self._counts(session_id)
        if previous is not None:
            counts[previous] = counts.get(previous, 0) - 1
        worker = home if publishing else self._pick_viewer_worker(home, counts, live)
        await self.bus.hash_set(_peers_key(session_id), participant, worker)
        if previous != worker:
            await self.bus.hash_incr(_counts_key(session_id), worker, 1)
            if previous is not None:
                await self.bus.hash_incr(_counts_key(session_id), previous, -1)
        new_relay = False
        if worker != home:
            new_relay = await self.bus.hash_set(
                _relays_key(session_id), worker, "relay", only_new=True
            )
            if new_relay:
                logger.info("room %s: worker %s joins as a relay", session_id, worker)
        gone = previous if previous is not None and previous != worker else None
        return PeerPlacement(worker, new_relay, gone)

    async def _counts(self, session_id: str) -> dict[str, int]:
        raw = await self.bus.hash_all(_counts_key(session_id))
        return {w: int(n) for w, n in raw.items() if n.lstrip("-").isdigit()}

    def _pick_viewer_worker(
        self, home: str, counts: dict[str, int], live: dict[str, Message]
    ) -> str:
        """The home, else a room worker with room to spare, else the least loaded live worker."""
        if home not in live:
            return home  # the home just placed (its first heartbeat may be on its way)
        serving = {w: n for w, n in counts.items() if w in live and n > 0}

        def busy(worker: str) -> bool:
            return _num(live[worker], "cpu_pct") >= self.spread_cpu_pct

        room_workers = [home, *sorted(w for w in serving if w != home)]
        for worker in room_workers:
            if not busy(worker):
                return worker  # the home first: every relay costs its origin one more viewer
        # all the room's workers near their capacity: the least loaded worker, a new relay
        # when one has room to spare (with spread_cpu_pct 0, round robin over all of them)
        return min(live, key=lambda w: (busy(w), serving.get(w, 0), _num(live[w], "cpu_pct"), w))

    async def worker_of(self, session_id: str, participant: str) -> str | None:
        """The worker serving ``participant``'s connection, if placed."""
        return await self.bus.hash_get(_peers_key(session_id), participant)

    async def peers(self, session_id: str) -> dict[str, str]:
        """Participant → worker for the room."""
        return await self.bus.hash_all(_peers_key(session_id))

    async def release_if_empty(self, session_id: str, worker: str) -> bool:
        """Forget ``worker`` as a relay of the room if it serves nobody there; whether it did."""
        counts = await self._counts(session_id)
        if counts.get(worker, 0) > 0:
            return False
        await self.bus.hash_delete(_counts_key(session_id), worker)
        if not await self.bus.hash_delete(_relays_key(session_id), worker):
            return False  # no relay: the home
        logger.info("room %s: relay %s is empty; released", session_id, worker)
        return True

    async def relays(self, session_id: str) -> list[str]:
        """The room's relay workers."""
        return sorted(await self.bus.hash_all(_relays_key(session_id)))

    async def peer_left(self, session_id: str, participant: str) -> str | None:
        """Forget ``participant``'s worker; returns a relay that is now empty (to close)."""
        worker = await self.bus.hash_get(_peers_key(session_id), participant)
        if worker is None or not await self.bus.hash_delete(_peers_key(session_id), participant):
            return None  # forgotten already (a dead worker's, or a second leave)
        await self.bus.hash_incr(_counts_key(session_id), worker, -1)
        return worker if await self.release_if_empty(session_id, worker) else None

    async def forget_workers(self, session_id: str, dead: set[str]) -> None:
        """Dead workers serve nobody in the room any more."""
        peers = await self.bus.hash_all(_peers_key(session_id))
        gone = [p for p, w in peers.items() if w in dead]
        if gone:
            await self.bus.hash_delete(_peers_key(session_id), *gone)
        if dead:
            await self.bus.hash_delete(_relays_key(session_id), *dead)
            await self.bus.hash_delete(_counts_key(session_id), *dead)

    async def forget_room(self, session_id: str) -> None:
        """The room ended: forget its participants' and relays' placement."""
        for key in (_peers_key, _relays_key, _counts_key):
            await self.bus.hash_delete(key(session_id))
