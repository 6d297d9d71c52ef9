"""Rate limits, one semantics for every layer: the token bucket.

A bucket holds at most ``burst`` tokens and refills at ``rate`` tokens a second; it starts
full. What it limits takes tokens:

- requests and messages (:class:`Buckets` per client address on ``/api/``; one
  :class:`TokenBucket` per WebSocket connection): one token each, refused when fewer than one
  is left (``429 rate_limited``, the ``rate_limited`` wire error);
- bytes (the media worker's inbound budget per participant): ``size`` tokens per packet;
- failures (:class:`FailureLimit`, logins and public evaluations): ``max_failures`` tokens
  refilled over ``window_s``; each failure spends one, and the key is refused (``429
  throttled``) while less than one is left. ``max_failures`` failures in a burst lock a key;
  it earns one attempt back every ``window_s / max_failures`` seconds and is whole again
  ``window_s`` after its last failure.

Buckets live in memory (:class:`Buckets`, bounded), or, for the limits a cluster shares
(failures), in a :class:`SharedBuckets` store: the bus (``signaling.bus``: Redis in a
cluster), with this process's memory as the fallback while the bus is unreachable. This
module sits in ``config`` so that every layer, the media worker included, may import it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from config.errors import BusError

__all__ = ["Buckets", "FailureLimit", "SharedBuckets", "TokenBucket"]

logger = logging.getLogger(__name__)


class TokenBucket:
    """One bucket: ``rate`` tokens a second, at most ``burst``; it starts full.

    ``now`` is a monotonic time in seconds (the caller's clock: hot paths pass the one they
    already read).
    """

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float | None = None) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = time.monotonic() if now is None else now

    def level(self, now: float) -> float:
        """The tokens in the bucket at ``now`` (refilled since the last call)."""
        tokens = self._tokens + (now - self._at) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self._tokens = tokens
        self._at = now
        return tokens

    def take(self, cost: float, now: float) -> bool:
        """Take ``cost`` tokens if there are that many; False (nothing taken) otherwise."""
        tokens = self.level(now)
        if tokens < cost:
            return False
        self._tokens = tokens - cost
        return True

    def spend(self, cost: float, now: float) -> float:
        """Take ``cost`` tokens whatever is left (never below zero); the level before."""
        tokens = self.level(now)
        self._tokens = max(0.0, tokens - cost)
        return tokens


class Buckets:
    """Token buckets by key (a client address, a username) in this process's memory.

    Bounded: past ``max_keys`` buckets the full ones are dropped (a full bucket is what a new
    key gets anyway), then the oldest half if that is not enough; dropping one only ever lets
    a client through sooner.
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def _bucket(self, key: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._shrink(now)
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
        return bucket

    def _shrink(self, now: float) -> None:
        live = {k: b for k, b in self._buckets.items() if b.level(now) < b.burst}
        if len(live) > self.max_keys // 2:
            live = dict(list(live.items())[-(self.max_keys // 2) :])
        self._buckets = live

    def take(self, key: str, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens from ``key``'s bucket; False when it has fewer."""
        now = self._clock()
        return self._bucket(key, now).take(cost, now)

    def spend(self, key: str, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens of ``key``'s bucket whatever is left; the level before."""
        now = self._clock()
        return self._bucket(key, now).spend(cost, now)

    def level(self, key: str) -> float:
        """The tokens in ``key``'s bucket."""
        bucket = self._buckets.get(key)
        return self.burst if bucket is None else bucket.level(self._clock())

    def reset(self, key: str) -> None:
        """Fill ``key``'s bucket again."""
        self._buckets.pop(key, None)


class SharedBuckets(Protocol):
    """Token buckets every hub of a cluster sees (``signaling.bus.Bus`` implements them)."""

    async def spend_tokens(self, key: str, rate: float, burst: float, cost: float) -> float:
        """Refill ``key``'s bucket, spend ``cost`` (never below zero); the level before.

        ``cost=0`` reads the level.
        """
        ...

    async def forget_tokens(self, key: str) -> None:
        """Fill ``key``'s bucket again (delete it)."""
        ...


def is_address_key(key: str) -> bool:
    """Whether a key counts a client address (its kind, before ``:``, ends in ``addr``)."""
    return key.partition(":")[0].endswith("addr")


class FailureLimit:
    """Failed attempts per key (a username, an address, a lookup code), shared by a cluster.

    Args:
        max_failures: the bucket of a key: failures in a burst before it is refused.
        window_s: the time the bucket takes to refill from empty.
        max_failures_per_address: the bucket of an address key (``addr:…``, ``eval-addr:…``):
            larger, since one address may be a whole office. Default: ``max_failures``.
    """

    PREFIX = "failures:"

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        *,
        max_failures_per_address: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address or max_failures
        self.window_s = window_s
        self._shared: SharedBuckets | None = None
        self._local = {
            n: Buckets(n / window_s, n, clock=clock)
            for n in {self.max_failures, self.max_failures_per_address}
        }

    def limit(self, key: str) -> int:
        """The failures ``key`` may have in a burst."""
        return self.max_failures_per_address if is_address_key(key) else self.max_failures

    def use(self, shared: SharedBuckets | None) -> None:
        """Keep the buckets in ``shared`` (the bus) from now on; None: in this process."""
        self._shared = shared

    async def _spend(self, key: str, cost: float) -> float:
        n = self.limit(key)
        if self._shared is not None:
            try:
                return await self._shared.spend_tokens(
                    self.PREFIX + key, n / self.window_s, n, cost
                )
            except BusError as exc:
                logger.warning("rate limit: bus unreachable, counting in this process: %s", exc)
        return self._local[n].spend(key, cost)

    async def locked(self, *keys: str) -> bool:
        """Whether any key has less than one attempt left."""
        for key in keys:
            if self._local[self.limit(key)].level(key) < 1 or await self._spend(key, 0) < 1:
                return True
        return False

    async def fail(self, *keys: str) -> None:
        """Count one failure against each key."""
        for key in keys:
            await self._spend(key, 1)

    async def reset(self, *keys: str) -> None:
        """Forget a key's failures (a username's, after its successful login).

        Never an address's: an attacker would reset its guesses with a login of its own.
        """
        for key in keys:
            self._local[self.limit(key)].reset(key)
            if self._shared is not None:
                try:
                    await self._shared.forget_tokens(self.PREFIX + key)
                except BusError as exc:
                    logger.warning("rate limit: bus unreachable, reset in this process: %s", exc)
