"""The resident's receipt: the registered item's lookup code, category and next deadline; the
rating shows what was chosen; the receipt route is the terminal's own; the receipt prints."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from tests.browser.browser_kit import ask_for_a_visit, frames_rising, wait_for
from tests.browser.conftest import Gateway, Open
from tests.browser.test_browser_pages import _axe  # the one axe helper (its path may move)
from web import keys

pytestmark = pytest.mark.browser

HEPING = "QX-DFJD-HPSQ"
XINYUAN = "QX-DFJD-XYSQ"


async def _has_code(page: Any) -> bool:
    return bool(await page.locator("#item-msg").get_attribute("data-lookup-code"))


async def _pressed(page: Any) -> list[str]:
    found: list[str] = await page.eval_on_selector_all(
        "[data-rating][aria-pressed=true]", "els => els.map(e => e.dataset.rating)"
    )
    return found


async def test_receipt_shows_the_items_lookup_code_and_the_chosen_rating(
    gateway: Gateway, open_page: Open
) -> None:
    kiosk = await open_page(f"/kiosk#token={gateway.seed.terminals[HEPING]}")
    console = await open_page("/console", login="reception")
    await ask_for_a_visit(kiosk, "房屋与拆迁")
    await console.get_by_role("button", name=re.compile("接听")).first.click()
    await kiosk.locator("#v-call").wait_for(state="visible")
    await frames_rising(console)
    session_id = await console.evaluate("window.__pg.console.session")

    # the officer registers the matter during the call
    await console.locator("#i-name").fill("张三")
    await console.locator("#i-phone").fill("13800001234")
    await console.locator("#i-request").fill("小区违建影响采光，请求处理")
    await console.get_by_role("button", name="登记", exact=True).click()
    await wait_for("item registered", lambda: _has_code(console))
    code = await console.locator("#item-msg").get_attribute("data-lookup-code")
    assert code
    # the call view names the linked item by its code, not by its internal id
    await console.locator("#item-linked").get_by_text(f"已关联事项: {code}").wait_for()
    # the session history says the visit is live, not still waiting
    row = console.locator(f'#history tr[data-session="{session_id}"]')
    await row.locator('[data-state="live"]').get_by_text("进行中").wait_for()

    await console.get_by_role("button", name="结束通话").click()
    # ended, and its details link the item by its lookup code
    await row.locator('[data-state="ended"]').wait_for()
    await row.get_by_role("button").click()
    await console.locator("#detail").get_by_role("link", name=f"已关联事项: {code}").wait_for()
    receipt = kiosk.locator("#receipt")
    await kiosk.locator("#v-receipt").wait_for(state="visible")
    await receipt.locator("#lookup-code").get_by_text(code).wait_for(timeout=10_000)
    assert await kiosk.locator("#code-pending").is_hidden()
    assert await receipt.locator("#r-category").text_content() == "房屋与拆迁"
    due = await receipt.locator("#r-due").text_content() or ""
    found = re.fullmatch(r"转送交办期限：(\d{4}-\d{2}-\d{2})前(（暂定）)?", due)
    assert found, due
    # marked when the date's year has no official holiday notice (national rules)
    calendar = gateway.app[keys.CALENDAR]
    assert bool(found[2]) is calendar.is_provisional(dt.date.fromisoformat(found[1])), due
    assert await receipt.locator("#reference").text_content() == session_id[:8].upper()

    # the rating: the chosen answer shows as chosen, and a second tap changes it visibly
    await kiosk.get_by_role("button", name="满意", exact=True).click()
    await wait_for("满意 chosen", lambda: _is(kiosk, ["4"]))
    assert "您的评价：满意" in (await kiosk.locator("#rated").text_content() or "")
    await kiosk.get_by_role("button", name="非常满意").click()
    await wait_for("非常满意 chosen", lambda: _is(kiosk, ["5"]))
    assert "您的评价：非常满意" in (await kiosk.locator("#rated").text_content() or "")
    chosen = kiosk.locator('[data-rating="5"]')
    colour = await chosen.evaluate("b => getComputedStyle(b).backgroundColor")
    other = await kiosk.locator('[data-rating="4"]').evaluate(
        "b => getComputedStyle(b).backgroundColor"
    )
    assert colour != other, "the chosen button looks like the others"
    assert await _axe(kiosk, "kiosk-receipt-code") == []

    # printed: the receipt with the code, without the rating and the buttons
    await kiosk.emulate_media(media="print")
    assert await kiosk.locator("#lookup-code").is_visible()
    assert await kiosk.locator("#rating").is_hidden()
    assert await kiosk.locator("#print").is_hidden()
    await kiosk.emulate_media(media="screen")
    assert await kiosk.locator("#print").is_visible()

    # the receipt route is the terminal's own: another terminal and an official get nothing
    url = f"/api/sessions/{session_id}/receipt"
    own = await kiosk.context.request.get(
        url, headers={"Authorization": f"Bearer {gateway.seed.terminals[HEPING]}"}
    )
    assert own.ok, await own.text()
    assert (await own.json())["lookup_code"] == code
    other_terminal = await kiosk.context.request.get(
        url, headers={"Authorization": f"Bearer {gateway.seed.terminals[XINYUAN]}"}
    )
    assert other_terminal.status == 404
    official = await console.context.request.get(url)
    assert official.status == 403


async def _is(page: Any, wanted: list[str]) -> bool:
    return await _pressed(page) == wanted
