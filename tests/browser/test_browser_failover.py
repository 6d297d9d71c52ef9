"""The media worker serving a live visit dies: both browsers recover (issue #13, finding 10).

The hub runs here on Redis with no media worker of its own; two ``petition-gateway worker``
processes serve the media. The one serving the visit between the kiosk and the console is
SIGKILLed, as in a crash: both pages show 正在重新连接媒体…, offer again from new peer
connections, the hub places the room on the surviving worker, and video advances again on both
sides; the recording goes on in new files (rows with a later start in the database).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from records import sessions
from signaling.bus_messages import PeerClose
from tests.browser.browser_kit import ask_for_a_visit, frames_rising, screenshot, wait_for
from tests.browser.conftest import Gateway, Open, served_gateway
from tests.cluster_kit import WorkerProcess, by_id, start_workers, worker_env
from tests.helpers import T, need_service

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.slow]

COMMUNITY = "QX-DFJD-HPSQ"
RECONNECTING = "正在重新连接媒体…"

#: frames decoded over the page's current connections, and how many times it started over
MEDIA = """async () => {
  let frames = 0;
  for (const link of window.__pg.links) {
    (await link.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
    });
  }
  return {frames, restarts: window.__pg.links.reduce((n, l) => n + l.restarts, 0)};
}"""


@dataclass
class ClusterGateway(Gateway):
    """The hub on Redis, and its media worker processes."""

    workers: list[WorkerProcess] = field(default_factory=list)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[ClusterGateway]:
    """The hub on Redis without a media worker of its own, and two worker processes."""
    redis_url = need_service("GATEWAY_TEST_REDIS_URL", "Redis")
    from gateway.app import BUS  # noqa: PLC0415

    prefix = "t" + uuid.uuid4().hex[:8]
    async with served_gateway(
        tmp_path, media_worker=False, redis={"url": redis_url, "prefix": prefix}
    ) as gw:
        workers: list[WorkerProcess] = []
        try:
            env = worker_env(
                redis_url,
                prefix,
                tmp_path / "data",
                f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
            )
            workers = await start_workers(gw.app[BUS], ("w-one", "w-two"), env, tmp_path)
            yield ClusterGateway(gw.url, gw.seed, gw.app, workers)
        finally:
            for w in workers:
                await w.stop()


async def _media(page: Any) -> dict[str, int]:
    result: dict[str, int] = await page.evaluate(MEDIA)
    return result


async def test_both_sides_recover_when_the_worker_of_a_visit_dies(
    gateway: ClusterGateway, open_page: Open
) -> None:
    from gateway.app import BUS  # noqa: PLC0415

    kiosk = await open_page(f"/kiosk#token={gateway.seed.terminals[COMMUNITY]}")
    console = await open_page("/console", login="reception")
    await ask_for_a_visit(kiosk, "劳动与社保")
    await console.get_by_role("button", name=re.compile("接听")).first.click()
    await kiosk.locator("#v-call").wait_for(state="visible")
    await frames_rising(kiosk)
    await frames_rising(console)
    session_id = await console.evaluate("window.__pg.console.session")
    members: set[str | None] = {
        await kiosk.evaluate("window.__pg.kiosk.me"),
        await console.evaluate("window.__pg.console.pid"),
    }
    serving = await gateway.app[BUS].holder(f"room:{session_id}")
    assert serving in {"w-one", "w-two"}

    async def recorded(before: Any = None, after: Any = None) -> set[str | None]:
        """Members with a recording row that started before (or after) a time."""
        async with gateway.store.transaction() as tx:
            rows = await sessions.recordings_of(tx, session_id)
        return {
            r.participant_id
            for r in rows
            if r.started_at is not None
            and (before is None or r.started_at < before)
            and (after is None or r.started_at > after)
        }

    await wait_for("both members recorded", lambda: _equal(recorded(), members), within=10)

    killed_at = dt.datetime.now(dt.UTC)
    killed = by_id(gateway.workers, serving).kill()

    # both pages say so, in Chinese first
    status = [kiosk.locator("#media-status"), console.locator("#media-status")]
    await asyncio.gather(
        *(s.get_by_text(RECONNECTING).wait_for(timeout=10_000 * T) for s in status)
    )
    shown = time.monotonic() - killed
    await screenshot(kiosk, "kiosk-reconnecting-media")

    # video advances again on both sides, over new connections
    async def back(page: Any) -> float:
        first: list[int] = []

        async def advancing() -> bool:
            m = await _media(page)
            if m["restarts"] < 1 or m["frames"] == 0:
                return False
            if not first:
                first.append(m["frames"])
            return m["frames"] > first[0]

        await wait_for("video back over a new connection", advancing, within=15)
        return time.monotonic() - killed

    video_back = max(await asyncio.gather(back(kiosk), back(console)))
    print(
        f"FAILOVER reconnecting_shown_s={shown:.2f} video_back_s={video_back:.2f}"
        f" video_back_after_status_s={video_back - shown:.2f}"
    )
    assert video_back <= 5.0 * T, f"video back {video_back:.1f} s after the kill"
    await frames_rising(kiosk)
    await frames_rising(console)
    for s in status:
        await s.wait_for(state="hidden", timeout=5_000 * T)
    survivor = await gateway.app[BUS].holder(f"room:{session_id}")
    assert survivor not in (None, serving)

    # the recording goes on in a new run: rows of both members that started after the kill
    await wait_for(
        "recording rows after the failover",
        lambda: _equal(recorded(after=killed_at), members),
        within=10,
    )

    await console.get_by_role("button", name="结束通话").click()
    await kiosk.locator("#v-receipt").wait_for(state="visible")
    # the dead worker's run is kept beside the new one (each run has its own directory)
    assert await recorded(before=killed_at) == members


async def _equal(got: Awaitable[set[str | None]], want: set[str | None]) -> bool:
    return await got == want


async def test_a_page_whose_connection_fails_starts_over_by_itself(
    gateway: ClusterGateway, open_page: Open
) -> None:
    """The worker is fine but drops one participant's connection: no media.lost comes; the
    page sees its connection fail, shows the status and offers from a new one (``restart``)."""
    from gateway.app import BUS  # noqa: PLC0415

    kiosk = await open_page(f"/kiosk#token={gateway.seed.terminals[COMMUNITY]}")
    console = await open_page("/console", login="reception")
    await ask_for_a_visit(kiosk, "劳动与社保")
    await console.get_by_role("button", name=re.compile("接听")).first.click()
    await kiosk.locator("#v-call").wait_for(state="visible")
    await frames_rising(kiosk)
    await frames_rising(console)
    session_id = await console.evaluate("window.__pg.console.session")
    resident = await kiosk.evaluate("window.__pg.kiosk.me")
    serving = await gateway.app[BUS].holder(f"room:{session_id}")

    await gateway.app[BUS].publish(
        f"media.worker.{serving}", PeerClose(session_id=session_id, peer=resident)
    )
    dropped = time.monotonic()
    await kiosk.locator("#media-status").get_by_text(RECONNECTING).wait_for(timeout=15_000 * T)
    print(f"FAILED-CONNECTION reconnecting_shown_s={time.monotonic() - dropped:.2f}")
    await wait_for("the kiosk on a new connection", lambda: _restarted(kiosk), within=10)
    await frames_rising(kiosk)
    await frames_rising(console, publisher=resident)
    await kiosk.locator("#media-status").wait_for(state="hidden", timeout=5_000 * T)
    assert await gateway.app[BUS].holder(f"room:{session_id}") == serving  # the same worker
    assert await console.evaluate("window.__pg.links[0].restarts") == 0  # the console kept its


async def _restarted(page: Any) -> bool:
    return bool((await _media(page))["restarts"] >= 1)
