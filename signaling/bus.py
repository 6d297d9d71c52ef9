"""The message bus between hubs and media workers: one interface, two implementations.

``MemoryBus`` serves the embedded default (one process). ``RedisBus`` serves a cluster: pub/sub
for messages, a hash with per-entry expiry for the worker registry, ``SET NX`` locks with
compare-and-delete release for room placement, and the cluster-wide token buckets of
``config.ratelimit`` (failed logins). What is published is a model of
:mod:`signaling.bus_messages` (the one definition of every bus message); subscribers receive
its JSON object and validate it with their channel's adapter.

This is the only module that imports redis (import-linter contract).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import pydantic_core
import redis.asyncio as aioredis
import redis.exceptions

from config.errors import BusError
from config.ratelimit import TokenBucket
from signaling.bus_messages import BusMessage

logger = logging.getLogger(__name__)

#: a message as a subscriber receives it (validate it with its channel's adapter), and a
#: registry entry's info
Message = dict[str, Any]

#: a subscription holds at most this many undelivered messages; a consumer that falls this far
#: behind loses the oldest (logged), it never grows memory without limit
SUBSCRIPTION_QUEUE = 10_000
#: seconds a hash lives after its last write (rooms last hours; a day is plenty)
HASH_TTL_S = 24 * 3600


class Subscription(Protocol):
    """An async iterator of the messages published on one channel since subscribing."""

    def __aiter__(self) -> AsyncIterator[Message]: ...

    async def get(self) -> Message:
        """Wait for the next message."""
        ...

    async def close(self) -> None:
        """Stop receiving; idempotent."""
        ...


class Bus(Protocol):
    """What hubs and workers need from the bus."""

    async def publish(self, channel: str, message: BusMessage) -> None:
        """Deliver ``message`` (its JSON object) to every current subscriber of ``channel``."""
        ...

    async def subscribe(self, channel: str) -> Subscription:
        """Start receiving messages of ``channel``; messages published before are not seen."""
        ...

    async def heartbeat(self, worker_id: str, info: Message, ttl_s: float) -> None:
        """Register or refresh a worker with its load; it is dead ``ttl_s`` after the last one."""
        ...

    async def forget_worker(self, worker_id: str) -> None:
        """Remove a worker from the registry at once (clean shutdown)."""
        ...

    async def live_workers(self) -> dict[str, Message]:
        """The workers whose last heartbeat is younger than its ttl, with their info."""
        ...

    async def listeners(self, channels: Sequence[str]) -> dict[str, int]:
        """How many subscribers each channel has across the bus, in one round trip.

        A worker process that died has none at once (the kernel closed its connection), long
        before its registry entry expires.
        """
        ...

    async def acquire(self, key: str, token: str, ttl_s: float) -> bool:
        """Take a lock (or placement) ``key`` for ``token`` unless someone else holds it."""
        ...

    async def release(self, key: str, token: str) -> bool:
        """Release ``key`` only if ``token`` still holds it; return whether it did."""
        ...

    async def holder(self, key: str) -> str | None:
        """The token holding ``key``, if any."""
        ...

    async def spend_tokens(self, key: str, rate: float, burst: float, cost: float) -> float:
        """Refill the cluster-wide token bucket ``key``, spend ``cost`` (never below zero).

        Returns the level before spending; ``cost=0`` reads it. A new bucket starts full
        (``burst``); ``config.ratelimit`` gives the semantics.
        """
        ...

    async def forget_tokens(self, key: str) -> None:
        """Delete the bucket ``key`` (it is full again)."""
        ...

    async def hash_set(self, key: str, field: str, value: str, *, only_new: bool = False) -> bool:
        """Set ``field`` of the hash ``key`` (with ``only_new``, unless it exists).

        Returns whether it was set. Hashes hold a room's shared state (which worker serves
        which participant, which workers serve the room: ``signaling.placement``).
        """
        ...

    async def hash_get(self, key: str, field: str) -> str | None:
        """One field of the hash ``key``."""
        ...

    async def hash_incr(self, key: str, field: str, by: int) -> int:
        """Add ``by`` to the integer ``field`` of the hash ``key`` (absent: 0); the new value."""
        ...

    async def hash_all(self, key: str) -> dict[str, str]:
        """Every field of the hash ``key`` (empty when absent)."""
        ...

    async def hash_delete(self, key: str, *fields: str) -> int:
        """Remove ``fields`` from the hash ``key`` (none: the whole hash); how many went."""
        ...

    async def ping(self) -> None:
        """Raise BusError if the bus is unreachable."""
        ...

    async def close(self) -> None:
        """Close every subscription and connection; idempotent."""
        ...


class _QueueSubscription:
    """A subscription fed by a bounded queue."""

    def __init__(self, channel: str, on_close: Any) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue(SUBSCRIPTION_QUEUE)
        self._on_close = on_close
        self._closed = False
        self.dropped = 0

    def pending(self) -> int:
        """Messages received but not yet taken by the consumer."""
        return self._queue.qsize()

    def put(self, message: Message) -> None:
        if self._closed:
            return
        if self._queue.full():
            # drop the oldest: a stalled consumer must not hold up publishers
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self.dropped += 1
            if self.dropped in (1, 100, 10_000):
                logger.warning(
                    "bus %s: consumer behind, %d messages dropped", self.channel, self.dropped
                )
        self._queue.put_nowait(message)

    async def get(self) -> Message:
        if self._closed:
            raise BusError(f"subscription to {self.channel!r} is closed")
        message = await self._queue.get()
        if message is None:
            raise BusError(f"subscription to {self.channel!r} is closed")
        return message

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while not self._closed:
            message = await self._queue.get()
            if message is None:
                return
            yield message

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        await self._on_close(self)


async def _close_all(subs: dict[str, set[_QueueSubscription]]) -> None:
    for channel_subs in list(subs.values()):
        for sub in list(channel_subs):
            await sub.close()
    subs.clear()


#: token buckets the in-memory bus keeps at most (failed logins under a spray of usernames)
MAX_MEMORY_BUCKETS = 100_000


class MemoryBus:
    """In-process bus for the embedded default and for tests."""

    def __init__(self) -> None:
        self._subs: dict[str, set[_QueueSubscription]] = {}
        self._workers: dict[str, tuple[float, Message]] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._hashes: dict[str, dict[str, str]] = {}
        self._closed = False

    async def publish(self, channel: str, message: BusMessage) -> None:
        if self._closed:
            raise BusError("bus is closed")
        # a JSON round trip keeps the memory bus honest: what Redis could not carry fails here too
        try:
            data = json.loads(message.model_dump_json())
        except (pydantic_core.PydanticSerializationError, ValueError) as exc:
            raise BusError(f"message on {channel!r} is not JSON-serialisable: {exc}") from exc
        for sub in list(self._subs.get(channel, ())):
            sub.put(data)

    async def subscribe(self, channel: str) -> Subscription:
        if self._closed:
            raise BusError("bus is closed")
        sub = _QueueSubscription(channel, self._unsubscribe)
        self._subs.setdefault(channel, set()).add(sub)
        return sub

    async def _unsubscribe(self, sub: _QueueSubscription) -> None:
        subs = self._subs.get(sub.channel)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.channel]

    async def heartbeat(self, worker_id: str, info: Message, ttl_s: float) -> None:
        self._workers[worker_id] = (time.monotonic() + ttl_s, dict(info))

    async def forget_worker(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)

    async def live_workers(self) -> dict[str, Message]:
        now = time.monotonic()
        return {w: dict(info) for w, (expiry, info) in self._workers.items() if expiry > now}

    async def listeners(self, channels: Sequence[str]) -> dict[str, int]:
        return {c: len(self._subs.get(c, ())) for c in channels}

    async def acquire(self, key: str, token: str, ttl_s: float) -> bool:
        now = time.monotonic()
        held = self._locks.get(key)
        if held is not None and held[1] > now and held[0] != token:
            return False
        self._locks[key] = (token, now + ttl_s)
        return True

    async def release(self, key: str, token: str) -> bool:
        held = self._locks.get(key)
        if held is None or held[0] != token:
            return False
        del self._locks[key]
        return True

    async def holder(self, key: str) -> str | None:
        held = self._locks.get(key)
        if held is None or held[1] <= time.monotonic():
            return None
        return held[0]

    async def spend_tokens(self, key: str, rate: float, burst: float, cost: float) -> float:
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
            if len(self._buckets) >= MAX_MEMORY_BUCKETS:  # bounded under a spray of keys
                live = {k: b for k, b in self._buckets.items() if b.level(now) < b.burst}
                if len(live) > MAX_MEMORY_BUCKETS // 2:
                    live = dict(list(live.items())[-(MAX_MEMORY_BUCKETS // 2) :])
                self._buckets = live
            bucket = self._buckets[key] = TokenBucket(rate, burst, now)
        return bucket.spend(cost, now)

    async def forget_tokens(self, key: str) -> None:
        self._buckets.pop(key, None)

    async def hash_set(self, key: str, field: str, value: str, *, only_new: bool = False) -> bool:
        fields = self._hashes.setdefault(key, {})
        if only_new and field in fields:
            return False
        fields[field] = value
        return True

    async def hash_get(self, key: str, field: str) -> str | None:
        return self._hashes.get(key, {}).get(field)

    async def hash_incr(self, key: str, field: str, by: int) -> int:
        fields = self._hashes.setdefault(key, {})
        fields[field] = str(int(fields.get(field, "0")) + by)
        return int(fields[field])

    async def hash_all(self, key: str) -> dict[str, str]:
        return dict(self._hashes.get(key, {}))

    async def hash_delete(self, key: str, *fields: str) -> int:
        if not fields:
            return len(self._hashes.pop(key, {}))
        held = self._hashes.get(key, {})
        gone = sum(1 for f in fields if held.pop(f, None) is not None)
        if not held:
            self._hashes.pop(key, None)
        return gone

    async def ping(self) -> None:
        if self._closed:
            raise BusError("bus is closed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await _close_all(self._subs)


_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
else
    return 0
end
"""

#: a token bucket (config.ratelimit) as a hash {tokens, at}, on the server's clock so that
#: every hub agrees; it expires once it would be full again
_SPEND_SCRIPT = """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('time')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local held = redis.call('hmget', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or burst
local at = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local left = math.max(0, tokens - cost)
redis.call('hset', KEYS[1], 'tokens', tostring(left), 'at', tostring(now))
redis.call('pexpire', KEYS[1], math.ceil((burst - left) / rate * 1000) + 1000)
return tostring(tokens)
"""


class RedisBus:
    """Bus over one Redis: pub/sub, a worker registry with expiry, and SET NX locks.

    One pub/sub connection serves every subscription of this process; a reader task owned by
    the bus dispatches messages to the subscriptions' bounded queues.
    """

    def __init__(self, url: str, prefix: str = "pg") -> None:
        self._url = url
        self._prefix = prefix
        self._redis: aioredis.Redis = aioredis.Redis.from_url(url, decode_responses=True)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._subs: dict[str, set[_QueueSubscription]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        self._release = self._redis.register_script(_RELEASE_SCRIPT)
        self._spend = self._redis.register_script(_SPEND_SCRIPT)

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    async def publish(self, channel: str, message: BusMessage) -> None:
        try:
            data = message.model_dump_json()
        except pydantic_core.PydanticSerializationError as exc:
            raise BusError(f"message on {channel!r} is not JSON-serialisable: {exc}") from exc
        try:
            await self._redis.publish(self._key("ch", channel), data)
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis publish on {channel!r} failed: {exc}") from exc

    async def subscribe(self, channel: str) -> Subscription:
        if self._closed:
            raise BusError("bus is closed")
        sub = _QueueSubscription(channel, self._unsubscribe)
        first = channel not in self._subs
        self._subs.setdefault(channel, set()).add(sub)
        if first:
            try:
                await self._pubsub.subscribe(self._key("ch", channel))
            except redis.exceptions.RedisError as exc:
                raise BusError(f"redis subscribe to {channel!r} failed: {exc}") from exc
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="redis-bus-reader")
        return sub

    async def _unsubscribe(self, sub: _QueueSubscription) -> None:
        subs = self._subs.get(sub.channel)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[sub.channel]
            if not self._closed:
                with contextlib.suppress(redis.exceptions.RedisError):
                    await self._pubsub.unsubscribe(self._key("ch", sub.channel))

    async def _read(self) -> None:
        prefix = self._key("ch", "")
        while not self._closed:
            try:
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.05)
                    continue
                item = await self._pubsub.get_message(timeout=1.0)
            except redis.exceptions.RedisError:
                logger.exception("redis bus reader failed; retrying in 1 s")
                await asyncio.sleep(1.0)
                continue
            if item is None or item.get("type") != "message":
                continue
            channel = str(item["channel"])[len(prefix) :]
            try:
                message = json.loads(item["data"])
            except ValueError:
                logger.warning("bus %s: undecodable message dropped", channel)
                continue
            for sub in list(self._subs.get(channel, ())):
                sub.put(message)

    async def heartbeat(self, worker_id: str, info: Message, ttl_s: float) -> None:
        payload = json.dumps({"info": info, "expires": time.time() + ttl_s})
        try:
            await self._redis.hset(self._key("workers"), worker_id, payload)
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis heartbeat of {worker_id!r} failed: {exc}") from exc

    async def forget_worker(self, worker_id: str) -> None:
        try:
            await self._redis.hdel(self._key("workers"), worker_id)
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis forget of {worker_id!r} failed: {exc}") from exc

    async def live_workers(self) -> dict[str, Message]:
        try:
            entries = await self._redis.hgetall(self._key("workers"))
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis worker registry read failed: {exc}") from exc
        now = time.time()
        live: dict[str, Message] = {}
        dead: list[str] = []
        for key, raw in entries.items():
            worker_id = str(key)
            try:
                entry = json.loads(raw)
            except ValueError:
                dead.append(worker_id)
                continue
            if float(entry.get("expires", 0)) > now:
                live[worker_id] = dict(entry.get("info", {}))
            elif float(entry.get("expires", 0)) < now - 60:
                dead.append(worker_id)
        if dead:
            with contextlib.suppress(redis.exceptions.RedisError):
                await self._redis.hdel(self._key("workers"), *dead)
        return live

    async def listeners(self, channels: Sequence[str]) -> dict[str, int]:
        if not channels:
            return {}
        keys = [self._key("ch", c) for c in channels]
        try:
            counts = await self._redis.pubsub_numsub(*keys)
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis subscriber count failed: {exc}") from exc
        by_key = {str(k): int(n) for k, n in counts}
        return {c: by_key.get(k, 0) for c, k in zip(channels, keys, strict=True)}

    async def acquire(self, key: str, token: str, ttl_s: float) -> bool:
        k = self._key("lock", key)
        try:
            if await self._redis.set(k, token, nx=True, px=int(ttl_s * 1000)):
                return True
            # re-entrant for the same holder: refresh the expiry
            if await self._redis.get(k) == token:
                await self._redis.pexpire(k, int(ttl_s * 1000))
                return True
            return False
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis lock {key!r} failed: {exc}") from exc

    async def release(self, key: str, token: str) -> bool:
        try:
            return bool(await self._release(keys=[self._key("lock", key)], args=[token]))
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis release {key!r} failed: {exc}") from exc

    async def holder(self, key: str) -> str | None:
        try:
            value = await self._redis.get(self._key("lock", key))
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis read {key!r} failed: {exc}") from exc
        return None if value is None else str(value)

    async def spend_tokens(self, key: str, rate: float, burst: float, cost: float) -> float:
        try:
            level = await self._spend(
                keys=[self._key("bucket", key)], args=[repr(rate), repr(burst), repr(cost)]
            )
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis token bucket {key!r} failed: {exc}") from exc
        return float(level)

    async def forget_tokens(self, key: str) -> None:
        try:
            await self._redis.delete(self._key("bucket", key))
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis token bucket {key!r} failed: {exc}") from exc

    async def hash_set(self, key: str, field: str, value: str, *, only_new: bool = False) -> bool:
        k = self._key("hash", key)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                (pipe.hsetnx if only_new else pipe.hset)(k, field, value)
                # a room's state must not outlive it for ever if nobody cleans up (a crash)
                pipe.expire(k, HASH_TTL_S)
                done, _ = await pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis hash {key!r} failed: {exc}") from exc
        return bool(done) or not only_new

    async def hash_get(self, key: str, field: str) -> str | None:
        try:
            value = await self._redis.hget(self._key("hash", key), field)
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis hash {key!r} failed: {exc}") from exc
        return None if value is None else str(value)

    async def hash_incr(self, key: str, field: str, by: int) -> int:
        k = self._key("hash", key)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(k, field, by)
                pipe.expire(k, HASH_TTL_S)
                value, _ = await pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis hash {key!r} failed: {exc}") from exc
        return int(value)

    async def hash_all(self, key: str) -> dict[str, str]:
        try:
            values = await self._redis.hgetall(self._key("hash", key))
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis hash {key!r} failed: {exc}") from exc
        return {str(f): str(v) for f, v in values.items()}

    async def hash_delete(self, key: str, *fields: str) -> int:
        k = self._key("hash", key)
        try:
            if not fields:
                return int(await self._redis.delete(k))
            return int(await self._redis.hdel(k, *fields))
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis hash {key!r} failed: {exc}") from exc

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except redis.exceptions.RedisError as exc:
            raise BusError(f"redis at {self._url!r} unreachable: {exc}") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await _close_all(self._subs)
        if self._reader is not None:
            self._reader.cancel()
            # gather re-raises our own cancellation but not the reader's
            await asyncio.gather(self._reader, return_exceptions=True)
        with contextlib.suppress(redis.exceptions.RedisError):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # untyped in some redis-py versions
        with contextlib.suppress(redis.exceptions.RedisError):
            await self._redis.aclose()


def create_bus(redis_url: str | None, prefix: str = "pg") -> Bus:
    """The Redis bus when a URL is configured, else the in-memory bus."""
    if redis_url:
        return RedisBus(redis_url, prefix=prefix)
    return MemoryBus()
