"""The visit queue as clients see it: residents' positions, reception consoles' lists.

The queue itself lives in the database (visits in state ``waiting``, oldest first, per
reception unit); ``queue.<unit>`` on the bus says "it changed", and each hub recomputes what
its own connections see.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from records import sessions
from records.enums import ParticipantRole, SessionKind
from records.policy import Action, decide
from records.principals import Principal
from signaling import bus_messages as B
from signaling import events as E
from signaling.bus import Subscription

if TYPE_CHECKING:
    from signaling.services import Services


class VisitQueue:
    """This hub's subscriptions to the reception units' queues."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.subs: dict[int, tuple[Subscription, asyncio.Task[None]]] = {}
        self._dirty: set[int] = set()

    async def ensure_sub(self, unit_id: int) -> None:
        """Follow the queue of reception unit ``unit_id`` (once per hub)."""
        if unit_id in self.subs:
            return
        services = self.services
        sub = await services.bus.subscribe(B.queue_channel(unit_id))
        task = services.spawn(
            services.consume(sub, B.QueueChanged.model_validate, self._on_changed),
            f"queue-{unit_id}",
        )
        self.subs[unit_id] = (sub, task)

    async def close(self) -> None:
        """Unsubscribe every queue (the hub is closing)."""
        for sub, _task in list(self.subs.values()):
            await sub.close()

    async def changed(self, unit_id: int) -> None:
        """Tell every hub that the queue of ``unit_id`` changed."""
        await self.services.bus.publish(B.queue_channel(unit_id), B.QueueChanged(unit_id=unit_id))

    async def _on_changed(self, msg: B.QueueChanged) -> None:
        unit_id = msg.unit_id
        if unit_id in self._dirty:
            return
        self._dirty.add(unit_id)
        await asyncio.sleep(0.05)  # coalesce bursts of changes into one recomputation
        self._dirty.discard(unit_id)
        services = self.services
        async with services.tx() as tx:
            waiting = await sessions.waiting_visits(tx, [unit_id])
        order = {s.id: i + 1 for i, s in enumerate(waiting)}
        for member in services.presence.members.values():
            if (
                member.kind is SessionKind.VISIT
                and member.role is ParticipantRole.RESIDENT
                and member.conn
            ) and member.session_id in order:
                member.conn.send(
                    E.QueuePosition(
                        session=member.session_id,
                        position=order[member.session_id],
                        waiting=len(waiting),
                    )
                )
        for conn in services.conns.values():
            if unit_id in conn.watching_queue and conn.principal is not None:
                conn.send(
                    E.QueueUpdate(
                        unit_id=unit_id,
                        visits=self.visible(conn.principal, waiting),
                    )
                )

    def visible(
        self, principal: Principal, waiting: list[sessions.SessionInfo]
    ) -> list[dict[str, Any]]:
        """The waiting visits ``principal`` may answer, as a reception console lists them."""
        tree = self.services.store.tree
        out = []
        for i, s in enumerate(waiting):
            if not decide(principal, Action.ANSWER_QUEUE, s.target(), tree):
                continue
            unit = tree.get(s.unit_id)
            out.append(
                {
                    "session": s.id,
                    "position": i + 1,
                    "unit_id": s.unit_id,
                    "unit_name": unit.name if unit else "",
                    "category": s.category,
                    "waiting_since": s.created_at.isoformat(),
                    "to_leader": s.routed_to_leader_id is not None,
                }
            )
        return out

    async def position(self, s: sessions.SessionInfo) -> int:
        """The visit's place in its reception unit's queue (0: not waiting)."""
        async with self.services.tx() as tx:
            waiting = await sessions.waiting_visits(
                tx, [s.reception_unit_id] if s.reception_unit_id else None
            )
        for i, w in enumerate(waiting):
            if w.id == s.id:
                return i + 1
        return 0
