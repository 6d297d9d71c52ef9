"""One rate limiter for every layer (config.ratelimit): token buckets in memory and on the bus."""

from __future__ import annotations

import secrets

from config.ratelimit import Buckets, FailureLimit, TokenBucket
from signaling.bus import MemoryBus, RedisBus
from tests.helpers import need_service


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=2, burst=4, now=0.0)
    assert [bucket.take(1, 0.0) for _ in range(5)] == [True, True, True, True, False]
    assert not bucket.take(1, 0.25)  # half a token back
    assert bucket.take(1, 0.5)
    assert bucket.level(100.0) == 4  # never more than the burst


def test_buckets_are_per_key_and_bounded() -> None:
    clock = _Clock()
    buckets = Buckets(rate=1, burst=2, max_keys=4, clock=clock)
    assert buckets.take("a")
    assert buckets.take("a")
    assert not buckets.take("a")
    assert buckets.take("b")  # another address has its own bucket
    for n in range(10):  # a spray of keys keeps memory bounded and never locks anyone out
        assert buckets.take(f"spray{n}")
    assert len(buckets._buckets) <= 4  # noqa: SLF001
    clock.now += 1
    assert buckets.take("a")


async def test_failures_refill_one_attempt_at_a_time() -> None:
    clock = _Clock()
    limit = FailureLimit(5, window_s=300, max_failures_per_address=30, clock=clock)
    for _ in range(5):
        assert not await limit.locked("user:ann", "addr:10.0.0.1")
        await limit.fail("user:ann", "addr:10.0.0.1")
    assert await limit.locked("user:ann")
    assert not await limit.locked("addr:10.0.0.1")  # an address may fail 30 times
    clock.now += 59
    assert await limit.locked("user:ann")
    clock.now += 1  # 300 s / 5 failures: one attempt back a minute
    assert not await limit.locked("user:ann")
    await limit.fail("user:ann")
    assert await limit.locked("user:ann")
    await limit.reset("user:ann")
    assert not await limit.locked("user:ann")


async def test_the_memory_bus_and_redis_keep_the_same_bucket() -> None:
    redis_url = need_service("GATEWAY_TEST_REDIS_URL", "Redis")
    for bus in (MemoryBus(), RedisBus(redis_url, prefix="t" + secrets.token_hex(4))):
        key = "failures:user:ann"
        assert await bus.spend_tokens(key, 0.01, 3, 0) == 3  # a new bucket is full
        levels = [await bus.spend_tokens(key, 0.01, 3, 1) for _ in range(4)]
        assert [round(v) for v in levels] == [3, 2, 1, 0]  # never below zero
        assert await bus.spend_tokens(key, 0.01, 3, 0) < 1
        await bus.forget_tokens(key)
        assert await bus.spend_tokens(key, 0.01, 3, 0) == 3
        await bus.forget_tokens(key)
        await bus.close()
