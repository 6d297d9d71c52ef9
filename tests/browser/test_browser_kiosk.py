"""The community terminal beyond a plain visit: announcements (信息发布) and a network blip."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from records import sessions
from tests.browser.browser_kit import (
    ABANDON_SOCKET,
    T,
    ask_for_a_visit,
    frames_rising,
    screenshot,
    wait_for,
)
from tests.browser.conftest import Gateway, Open
from web import keys

pytestmark = pytest.mark.browser

HEPING = "QX-DFJD-HPSQ"  # 和平社区, under 东风街道
XINYUAN = "QX-DFJD-XYSQ"  # also under 东风街道
BINHE = "QX-HHJD-BHSQ"  # under 荷花街道: outside 东风街道's subtree


async def _publish(official: Any, title: str, body: str) -> dict[str, Any]:
    """Publish through the REST API as the signed-in official of ``official``'s context."""
    me = await official.request.get("/api/me")
    assert me.ok, await me.text()
    csrf = (await me.json())["csrf_token"]
    resp = await official.request.post(
        "/api/announcements",
        data={"title": title, "body": body},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 201, await resp.text()
    ann: dict[str, Any] = await resp.json()
    return ann


async def _idle_kiosk(open_page: Open, gateway: Gateway, community: str) -> Any:
    kiosk = await open_page(f"/kiosk#token={gateway.seed.terminals[community]}")
    await kiosk.locator("#v-idle").wait_for(state="visible")
    return kiosk


async def test_announcements_reach_terminals_in_scope(gateway: Gateway, open_page: Open) -> None:
    heping = await _idle_kiosk(open_page, gateway, HEPING)
    binhe = await _idle_kiosk(open_page, gateway, BINHE)
    for kiosk in (heping, binhe):
        assert await kiosk.locator("#announcements").is_hidden()
        # a reload would lose this: the announcement must arrive on the open page
        await kiosk.evaluate("window.__notReloaded = true")

    # the leader of 东风街道 publishes to the terminals of the sub-district
    dongfeng = await open_page("/console", login="dongfeng")
    title = "东风街道便民服务通知"
    body = "本周六上午九点在社区服务中心开展法律咨询，欢迎居民前来。"
    await _publish(dongfeng, title, body)

    board = heping.locator("#announcements")
    await board.get_by_role("heading", name=title).wait_for(state="visible", timeout=10_000 * T)
    await board.get_by_text(body).wait_for(state="visible")
    assert await heping.evaluate("window.__notReloaded === true")
    await screenshot(heping, "kiosk-announcement")

    # a terminal of the same sub-district that starts afterwards has it on connect
    xinyuan = await _idle_kiosk(open_page, gateway, XINYUAN)
    await (
        xinyuan.locator("#announcements")
        .get_by_role("heading", name=title)
        .wait_for(state="visible", timeout=10_000 * T)
    )
    assert body in (await xinyuan.locator("#ann-list").text_content() or "")

    # 荷花街道 publishes its own: once 滨河社区 shows that one, the earlier push has been
    # delivered to everyone it was meant for, so its absence there is not a race
    hehua = await open_page("/console", login="hehua")
    own = "荷花街道停水通知"
    await _publish(hehua, own, "明日八点至十二点停水检修。")
    await (
        binhe.locator("#announcements")
        .get_by_role("heading", name=own)
        .wait_for(state="visible", timeout=10_000 * T)
    )
    assert await binhe.evaluate("window.__notReloaded === true")
    assert title not in (await binhe.locator("#ann-list").text_content() or "")
    assert own not in (await heping.locator("#ann-list").text_content() or "")
    # nor does it get it on connect
    await binhe.reload()
    await binhe.locator("#announcements").get_by_role("heading", name=own).wait_for()
    assert title not in (await binhe.locator("#ann-list").text_content() or "")
    assert body not in (await binhe.locator("main").text_content() or "")


async def test_network_blip_keeps_the_visit(gateway: Gateway, open_page: Open) -> None:
    kiosk = await open_page(f"/kiosk#token={gateway.seed.terminals[HEPING]}")
    console = await open_page("/console", login="reception")
    await ask_for_a_visit(kiosk, "房屋与拆迁")
    await console.get_by_role("button", name=re.compile("接听")).first.click()
    await kiosk.locator("#v-call").wait_for(state="visible")
    session_id = await kiosk.evaluate("window.__pg.kiosk.session")
    resident = await kiosk.evaluate("window.__pg.kiosk.me")
    officer = await console.evaluate("window.__pg.console.pid")
    assert session_id
    assert resident
    assert officer
    assert await console.evaluate("window.__pg.console.session") == session_id
    await frames_rising(kiosk, publisher=officer)
    await frames_rising(console, publisher=resident)

    # the terminal's network goes away for about three seconds, its signaling connection with
    # it; reconnecting fails meanwhile, and the terminal says so
    ctx = kiosk.context
    conn = kiosk.locator("#conn")
    started = time.monotonic()
    await ctx.set_offline(True)
    await kiosk.evaluate(ABANDON_SOCKET)
    await conn.get_by_text("网络中断").wait_for(timeout=5_000 * T)
    await kiosk.wait_for_timeout(3000)  # the length of the blip, not an assertion
    assert "网络中断" in (await conn.text_content() or ""), "reconnected while offline"
    await ctx.set_offline(False)

    # back in the same call, video both ways, well within the resume window
    await conn.get_by_text("已连接").wait_for(timeout=15_000 * T)
    await kiosk.locator("#v-call").wait_for(state="visible", timeout=5_000 * T)
    assert await kiosk.evaluate("window.__pg.kiosk.session") == session_id
    assert await kiosk.evaluate("window.__pg.kiosk.me") == resident
    assert "接访人员" in (await kiosk.locator("#people").text_content() or "")
    await frames_rising(kiosk, publisher=officer, within=15)
    await frames_rising(console, publisher=resident, within=15)
    recovered = time.monotonic() - started
    assert recovered < 15 * T, f"video both ways again only after {recovered:.1f} s"
    assert await console.evaluate("window.__pg.console.session") == session_id
    await screenshot(kiosk, "kiosk-after-blip")

    # the records, once the hub has let the old connection go: the resident resumed its
    # participant and never left; and the late end of the old connection leaves the call alone
    hub = gateway.app[keys.HUB]
    await wait_for("the hub to drop the old connection", lambda: _conns(hub, 2), within=25)
    async with gateway.store.transaction() as tx:
        s = await sessions.get_session(tx, session_id)
        events = await sessions.session_events(tx, session_id)
    assert s.state.value == "live"
    mine = [p for p in s.participants if p.id == resident]
    assert len(mine) == 1, s.participants
    assert mine[0].left_at is None, mine[0]
    assert any(e["event"] == "resumed" and e["participant"] == resident for e in events), events
    assert not any(e["event"] == "left" for e in events), events
    # and the call goes on: the officer still sees the resident
    await frames_rising(console, publisher=resident, within=10)
    assert await kiosk.locator("#v-call").is_visible()


async def _conns(hub: Any, n: int) -> bool:
    return len(hub.conns) == n
