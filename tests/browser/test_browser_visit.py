"""A whole video visit in three browser contexts: terminal, officer's console, invited lawyer."""

from __future__ import annotations

import re
from typing import Any

import pytest

from records import sessions
from tests.browser.browser_kit import ask_for_a_visit, frames_rising, screenshot, stats, wait_for
from tests.browser.conftest import Gateway, Open

pytestmark = pytest.mark.browser

COMMUNITY = "QX-DFJD-HPSQ"


async def test_whole_visit(gateway: Gateway, open_page: Open) -> None:
    kiosk = await open_page(f"/kiosk#token={gateway.seed.terminals[COMMUNITY]}")
    console = await open_page("/console", login="reception")

    # the terminal: two touches to reach the queue
    await ask_for_a_visit(kiosk, "房屋与拆迁")
    await screenshot(kiosk, "kiosk-queue")

    # the officer accepts; both render each other's video
    await console.get_by_role("button", name=re.compile("接听")).first.click()
    await kiosk.locator("#v-call").wait_for(state="visible")
    await frames_rising(kiosk)
    await frames_rising(console)
    rec = kiosk.locator("#rec")
    assert "正在录音录像" in (await rec.text_content() or "")
    assert "接访人员" in (await kiosk.locator("#people").text_content() or "")
    session_id = await console.evaluate("window.__pg.console.session")

    # the officer registers a petition item beside the video
    await console.locator("#i-name").fill("张三")
    await console.locator("#i-phone").fill("13800001234")
    await console.locator("#i-request").fill("小区违建影响采光，请求处理")
    await console.get_by_role("button", name="登记", exact=True).click()
    await wait_for("item registered", lambda: _has_code(console))
    lookup_code = await console.locator("#item-msg").get_attribute("data-lookup-code")
    assert lookup_code
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", lookup_code)

    # the officer invites a lawyer; a third context joins with the link, seen by both
    await console.locator("#inv-name").fill("李律师")
    await console.get_by_role("button", name="生成邀请链接").click()
    await wait_for("invite link", lambda: _value_starts(console, "#inv-link", "http"))
    link = await console.locator("#inv-link").input_value()
    lawyer = await open_page(link.replace(gateway.url, ""))
    await lawyer.locator("#v-call").wait_for(state="visible")
    lawyer_pid = await lawyer.evaluate("window.__pg.client.me")
    # the late joiner sees the others, and they see it
    await frames_rising(lawyer, within=30)
    await frames_rising(kiosk, publisher=lawyer_pid)
    await frames_rising(console, publisher=lawyer_pid)
    assert "律师" in (await kiosk.locator("#people").text_content() or "")
    await screenshot(console, "console-call")
    await screenshot(lawyer, "join-call")

    # the officer ends; the terminal shows the receipt and the rating is saved
    await console.get_by_role("button", name="结束通话").click()
    await kiosk.locator("#v-receipt").wait_for(state="visible")
    reference = await kiosk.locator("#reference").text_content()
    assert reference == session_id[:8].upper()
    await kiosk.get_by_role("button", name="满意", exact=True).click()
    await kiosk.locator("#rated").get_by_text("感谢您的评价").wait_for()
    await screenshot(kiosk, "kiosk-receipt")

    async with gateway.store.transaction() as tx:
        s = await sessions.get_session(tx, session_id)
        recs = await sessions.recordings_of(tx, session_id)
    assert s.state.value == "ended"
    assert s.rating == 4
    assert s.item_id is not None
    roles = {p.role.value for p in s.participants}
    assert {"resident", "officer", "lawyer"} <= roles
    assert all(p.joined_at is not None for p in s.participants)
    # the recorder writes a row per participant once its files are closed
    await wait_for("recording rows", lambda: _recordings(gateway, session_id), within=10)
    del recs
    await wait_for("rising frames stop", lambda: _no_pcs(kiosk))


async def _has_code(page: Any) -> bool:
    return bool(await page.locator("#item-msg").get_attribute("data-lookup-code"))


async def _value_starts(page: Any, sel: str, prefix: str) -> bool:
    value: str = await page.locator(sel).input_value()
    return value.startswith(prefix)


async def _recordings(gateway: Gateway, session_id: str) -> bool:
    async with gateway.store.transaction() as tx:
        recs = await sessions.recordings_of(tx, session_id)
    return len(recs) >= 2


async def _no_pcs(page: Any) -> bool:
    return bool((await stats(page))["pcs"] == 0)
