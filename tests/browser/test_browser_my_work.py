"""The console's first screen for handlers: my open items grouped by urgency.

An officer whose only open item is due in two weeks used to read 暂无数据: the list asked only
for items due within 7 days. Now every open item with a unit deadline is shown, in the groups
overdue / within 3 days / within 7 days / later, by lookup code, linking to the item page.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Gateway, Open
from tests.browser.test_browser_pages import _axe  # the one axe helper (its path may move)

pytestmark = pytest.mark.browser


async def _register(page: Any) -> dict[str, Any]:
    me = await page.context.request.get("/api/me")
    csrf = (await me.json())["csrf_token"]
    resp = await page.context.request.post(
        "/api/items",
        data={
            "type": "suggestion",
            "channel": "letter",
            "category": "welfare",
            "request": "建议增设社区助老食堂",
            "petitioners": [{"name": "李四", "phone": "13900005678"}],
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.ok, await resp.text()
    item: dict[str, Any] = (await resp.json())["item"]
    return item


async def test_my_items_due_later_than_a_week_are_listed_by_urgency(
    gateway: Gateway, open_page: Open
) -> None:
    console = await open_page("/console", login="dongfeng")
    item = await _register(console)
    assert item["due"]["what"] == "route"  # 15 days to route it: later than a week

    await console.reload()
    later = console.locator('#items section[data-urgency="later"]')
    entry = later.locator(f'li[data-item="{item["id"]}"]')
    await entry.wait_for()
    assert "暂无数据" not in await later.inner_text()
    assert "7日以后到期 (1)" in await later.locator("h3").inner_text()
    text = await entry.inner_text()
    assert item["lookup_code"] in text
    assert item["id"] not in text
    assert "转送交办期限" in text
    assert "已登记" in text
    for empty in ("overdue", "within3", "within7"):
        group = console.locator(f'#items section[data-urgency="{empty}"]')
        assert "(0)" in await group.locator("h3").inner_text()
    assert await _axe(console, "console-my-work") == []

    await console.locator("#lang").click()
    await later.locator("h3").get_by_text("Due later (1)").wait_for()
    assert "Routing deadline" in await entry.inner_text()

    # the lookup code opens the item page
    await entry.get_by_role("link", name=item["lookup_code"]).click()
    await console.locator("#item").wait_for(state="visible")
    assert await console.locator("#code").inner_text() == item["lookup_code"]


async def test_waiting_for_acknowledgement_and_review_windows(
    gateway: Gateway, open_page: Open
) -> None:
    console = await open_page("/console", login="dongfeng")
    me = await (await console.context.request.get("/api/me")).json()
    headers = {"X-CSRF-Token": me["csrf_token"]}
    # sent to the community below: it waits there, not for the street that sent it
    sent = await _register(console)
    resp = await console.context.request.post(
        f"/api/items/{sent['id']}/assign",
        data={"to_unit_id": gateway.seed.units["QX-DFJD-HPSQ"]},
        headers=headers,
    )
    assert resp.ok, await resp.text()
    # the street's own item, answered: the petitioner may still ask for a review
    answered = await _register(console)
    for action, body in (
        ("accept", {}),
        ("opinion", {"decision": "采纳建议", "legal_basis": "《信访工作条例》第三十二条"}),
    ):
        resp = await console.context.request.post(
            f"/api/items/{answered['id']}/{action}", data=body, headers=headers
        )
        assert resp.ok, await resp.text()

    await console.reload()
    to_ack = console.locator('#items section[data-waiting="to_ack"]')
    windows = console.locator('#items section[data-waiting="windows"]')
    entry = windows.locator(f'li[data-item="{answered["id"]}"]')
    await entry.wait_for()
    assert "申请复查期限" in await entry.inner_text()
    assert "复查、复核申请期内 (1)" in await windows.locator("h3").inner_text()
    # the community's item is below the street: in its own subtree, so it is listed
    await to_ack.locator(f'li[data-item="{sent["id"]}"]').wait_for()
    assert await _axe(console, "console-my-work-waiting") == []

    # the reception centre, which sent nothing to itself, has nothing waiting
    reception = await open_page("/console", login="reception")
    mine = reception.locator('#items section[data-waiting="to_ack"] h3')
    await mine.get_by_text("待本单位签收 (0)").wait_for()
    await reception.locator("#lang").click()
    await mine.get_by_text("Waiting for my unit's acknowledgement (0)").wait_for()
