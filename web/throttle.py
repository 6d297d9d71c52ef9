"""Failed-attempt throttling shared by every hub of a cluster (logins, public evaluations).

Failures are counted on the bus (Redis in a cluster, memory on one hub): a key (a username, an
address, a lookup code) with ``max_failures`` failures within a window of ``lockout_s`` after its
first one is refused until the window ends, on whichever hub the next attempt lands. If the bus
is unreachable the hub falls back to counting in its own memory (logged), so an outage of Redis
neither locks everybody out nor lifts the limit.
"""

from __future__ import annotations

import logging
from typing import Protocol

from config.errors import BusError
from records.accounts import LoginThrottle

logger = logging.getLogger(__name__)


class Counters(Protocol):
    """The bus's cluster-wide counters (``signaling.bus.Bus`` implements them)."""

    async def incr(self, key: str, ttl_s: float) -> int:
        """Add one and return the count; a new counter lives ``ttl_s``."""
        ...

    async def count(self, key: str) -> int:
        """The current count (0 if absent or expired)."""
        ...

    async def forget(self, key: str) -> None:
        """Delete the counter."""
        ...


class SharedThrottle:
    """Counts failures per key across the cluster; refuses after too many.

    Args:
        max_failures: failures allowed within the window (a username, a lookup code).
        lockout_s: the window, from a key's first failure.
        max_failures_per_address: failures allowed for an address key (``addr:…``); looser,
            since one address may be a whole office. Default: ``max_failures``.
    """

    PREFIX = "throttle:"

    def __init__(
        self, max_failures: int, lockout_s: float, *, max_failures_per_address: int | None = None
    ) -> None:
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._counters: Counters | None = None
        self._local = LoginThrottle(
            max_failures, lockout_s, max_failures_per_address=max_failures_per_address
        )

    def use(self, counters: Counters | None) -> None:
        """Count on ``counters`` (the bus) from now on; None: in this hub's memory."""
        self._counters = counters

    async def locked(self, *keys: str) -> bool:
        """Whether any key has reached the limit within its window."""
        if self._local.locked(*keys):
            return True
        if self._counters is None:
            return False
        try:
            for key in keys:
                if await self._counters.count(self.PREFIX + key) >= self._local.limit(key):
                    return True
        except BusError as exc:
            logger.warning("throttle: bus unreachable, counting on this hub only: %s", exc)
        return False

    async def fail(self, *keys: str) -> None:
        """Count one failure against each key."""
        if self._counters is not None:
            try:
                for key in keys:
                    await self._counters.incr(self.PREFIX + key, self.lockout_s)
                return
            except BusError as exc:
                logger.warning("throttle: bus unreachable, counting on this hub only: %s", exc)
        self._local.fail(*keys)

    async def reset(self, *keys: str) -> None:
        """Forget a key's failures (a username's, after its successful login).

        Never an address's: an attacker would reset its guesses with a login of its own.
        """
        self._local.reset(*keys)
        if self._counters is not None:
            try:
                for key in keys:
                    await self._counters.forget(self.PREFIX + key)
            except BusError as exc:
                logger.warning("throttle: bus unreachable, reset on this hub only: %s", exc)
