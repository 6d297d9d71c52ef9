"""/lookup: progress with the lookup code alone; the deadline named for what it is; the stage
rated named; wrong phone digits said as such."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from tests.browser.conftest import Gateway, Open
from tests.browser.test_browser_pages import _axe  # the one axe helper (its path may move)
from web import keys

pytestmark = pytest.mark.browser

HOUSING_BUREAU = "QX-ZJJ"


async def _post(page: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST as the signed-in official of ``page``'s context."""
    me = await page.context.request.get("/api/me")
    csrf = (await me.json())["csrf_token"]
    resp = await page.context.request.post(path, data=body, headers={"X-CSRF-Token": csrf})
    assert resp.ok, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


def _due_shown(gateway: Gateway, text: str, label: str) -> None:
    """``text`` is ``label：<date>``, marked （暂定） when the date's year has no notice."""
    found = re.fullmatch(label + r"：(\d{4}-\d{2}-\d{2})(（暂定）)?", text)
    assert found, text
    day = dt.date.fromisoformat(found[1])
    # a date in a year without an official holiday notice is by the national rules
    assert bool(found[2]) is gateway.app[keys.CALENDAR].is_provisional(day), text


async def _look_up(page: Any, code: str) -> None:
    await page.locator("#code").fill(code)
    await page.get_by_role("button", name="查询", exact=True).click()


async def test_lookup_shows_progress_by_code_and_rates_with_the_phone_digits(
    gateway: Gateway, open_page: Open
) -> None:
    reception = await open_page("/console", login="reception")
    created = await _post(
        reception,
        "/api/items",
        {
            "type": "complaint",
            "channel": "video",
            "category": "housing",
            "request": "小区违建影响采光，请求处理",
            "petitioners": [{"name": "张三", "phone": "13800001234"}],
        },
    )
    item = created["item"]
    code = item["lookup_code"]

    # the code alone: no phone digits are asked to see progress
    lookup = await open_page("/lookup")
    assert await lookup.locator("#phone4").is_hidden()
    await _look_up(lookup, code)
    await lookup.locator("#result").wait_for(state="visible")
    assert await lookup.locator("#state").text_content() == "已登记"
    due = await lookup.locator("#due").text_content() or ""
    _due_shown(gateway, due, "转送交办期限")
    assert await lookup.locator("#eval").is_hidden()

    # transferred to the housing bureau, received and accepted there
    housing = await open_page("/console", login="housing")
    await _post(
        reception,
        f"/api/items/{item['id']}/transfer",
        {"to_unit_id": gateway.seed.units[HOUSING_BUREAU]},
    )
    await _post(housing, f"/api/items/{item['id']}/acknowledge", {})
    await _post(housing, f"/api/items/{item['id']}/accept", {})

    # a mistyped code is said as such
    await _look_up(lookup, "ABC")
    await lookup.locator("#msg").get_by_text("查询码格式不正确").wait_for()

    await _look_up(lookup, code.lower().replace("-", " "))
    await lookup.locator("#state").get_by_text("已受理").wait_for()
    due = await lookup.locator("#due").text_content() or ""
    _due_shown(gateway, due, "办理期限")
    provisional = due.endswith("（暂定）")
    heading = lookup.locator("#eval-h")
    assert await heading.text_content() == "请对受理情况进行评价（是否及时受理）"

    # rating without the digits asks for them; wrong digits say the digits are wrong
    satisfied = lookup.get_by_role("button", name="满意", exact=True)
    await satisfied.click()
    await lookup.locator("#eval-msg").get_by_text("请填写登记时所留手机号的后4位数字").wait_for()
    await lookup.locator("#phone4").fill("9999")
    await satisfied.click()
    await lookup.locator("#eval-msg").get_by_text("手机号后4位与登记信息不符").wait_for()
    assert "查询码" not in (await lookup.locator("#eval-msg").text_content() or "")

    await lookup.locator("#phone4").fill("1234")
    await satisfied.click()
    await lookup.locator("#eval-msg").get_by_text("您的评价：满意").wait_for()
    # chosen: pressed, and its tick is drawn but not part of its name
    assert await satisfied.get_attribute("aria-pressed") == "true"
    assert await lookup.locator("[data-satisfied=false]").get_attribute("aria-pressed") == "false"
    tick = await satisfied.evaluate("b => getComputedStyle(b, '::before').content")
    assert "✓" in tick, tick
    assert await _axe(lookup, "lookup-rated") == []

    # and in English, the same page speaks English
    await lookup.locator("#lang").click()
    assert await lookup.locator("#state").text_content() == "Accepted"
    due_en = await lookup.locator("#due").text_content() or ""
    assert due_en.startswith("Handling deadline")
    assert due_en.endswith(" (provisional)") is provisional, due_en
    assert "Your rating: Satisfied" in (await lookup.locator("#eval-msg").text_content() or "")
