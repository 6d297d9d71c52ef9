"""/backlog on a phone: the leader in charge finds the case, sees last month missing for both
responsible units, writes the two entries, and the missing month goes away unit by unit; the
case cannot be closed (销号) while its item is open, and is closed from the page once the item
is concluded and resolved."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import update

from records.base import utcnow
from records.deadlines import local_date
from records.item_models import BacklogCase
from tests.browser.conftest import Gateway, Open
from tests.browser.test_browser_pages import _axe  # the one axe helper (its path may move)

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


async def _post(page: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    me = await page.context.request.get("/api/me")
    csrf = (await me.json())["csrf_token"]
    resp = await page.context.request.post(path, data=body, headers={"X-CSRF-Token": csrf})
    assert resp.ok, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


async def test_a_leader_writes_the_monthly_entries_on_a_phone(
    gateway: Gateway, open_page: Open
) -> None:
    units = gateway.seed.units
    phone = await open_page("/backlog", login="dongfeng", viewport=PHONE)
    item = (
        await _post(
            phone,
            "/api/items",
            {
                "type": "complaint",
                "channel": "visit",
                "category": "land",
                # the street registers and handles it itself (so it may accept it below)
                "registering_unit_id": units["QX-DFJD"],
                "request": "征地补偿款多年未发放",
                "petitioners": [{"name": "王五", "phone": "13700001111"}],
            },
        )
    )["item"]
    # flagged from the item page, on a desktop, by clicking
    desk = await open_page(f"/items/{item['lookup_code']}", login="dongfeng")
    await desk.get_by_role("button", name="列为积案（五个一）").click()
    await desk.get_by_label("包案领导").select_option(label="Dongfeng · 东风街道")
    await desk.get_by_label("工作专班").fill("街道信访办、社区两委")
    await desk.get_by_label("化解方案").fill("核实补偿台账，分期发放")
    await desk.get_by_label("稳控措施").fill("每周走访一次")
    await desk.get_by_label("工作台账").fill("见街道积案台账第12号")
    assert await desk.get_by_label("东风街道").is_checked()  # the item's own unit
    await desk.get_by_label("和平社区").check()
    await desk.locator("#flag-form").get_by_role("button", name="确认").click()
    link = desk.locator("#backlog-link a")
    await link.wait_for()
    href = await link.get_attribute("href") or ""
    case = {"id": int(href.rsplit("=", 1)[1])}
    assert await _axe(desk, "item-backlog-flagged") == []

    # flagged early last month, so last month's entries are due and missing
    today = local_date(utcnow())
    last = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=2)
    async with gateway.store.transaction() as tx:
        await tx.execute(
            update(BacklogCase)
            .where(BacklogCase.id == case["id"])
            .values(flagged_at=dt.datetime.combine(last, dt.time(4), dt.UTC))
        )
    month = f"{last:%Y-%m}"

    await phone.reload()
    await phone.locator("#mine").check()
    entry = phone.locator(f'#cases li[data-case="{case["id"]}"]')
    await entry.get_by_text("缺报 2 个月").wait_for()
    # the navigation counts the missing entries too
    await phone.locator("header.bar nav").get_by_role("link", name="缺报 2").wait_for()
    assert await _axe(phone, "backlog-list-phone") == []
    await entry.get_by_role("link", name=item["lookup_code"]).click()
    await phone.locator("#v-case").wait_for(state="visible")
    await phone.locator("#five").get_by_text("每周走访一次").wait_for()
    assert "核实补偿台账，分期发放" in await phone.locator("#five").inner_text()
    street = phone.locator(f'#units li[data-unit="{units["QX-DFJD"]}"] .missing')
    community = phone.locator(f'#units li[data-unit="{units["QX-DFJD-HPSQ"]}"] .missing')
    assert await street.get_attribute("data-missing") == month
    assert await community.get_attribute("data-missing") == month

    # the form fits the phone: nothing wider than the viewport
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    assert await _axe(phone, "backlog-case-phone") == []

    for unit, words in (("东风街道", "已核实台账"), ("和平社区", "已走访信访人")):
        await phone.get_by_label("单位").select_option(label=unit)
        await phone.get_by_label("月份").fill(month)
        await phone.get_by_label("进展情况").fill(words)
        await phone.get_by_role("button", name="保存").click()
        await phone.locator("#entry-msg").get_by_text(f"已保存 {unit} {month}").wait_for()
        await phone.locator("#entries").get_by_text(words).wait_for()
        if unit == "东风街道":
            await street.wait_for(state="detached")
            assert await community.get_attribute("data-missing") == month
    await community.wait_for(state="detached")
    assert "无缺报" in await phone.locator("#units").inner_text()
    await phone.locator('header.bar nav [data-count="backlog_missing"]').wait_for(state="detached")

    await phone.locator("#lang").click()
    await phone.locator("#units").get_by_text("Nothing missing").first.wait_for()

    # 销号: refused while the item is open, with the reason said; no button
    await phone.locator("#lang").click()
    closing = phone.locator("#closing")
    await closing.get_by_text("事项尚未办结（当前：已登记），暂不能销号").wait_for()
    assert await phone.locator("#close-case").is_hidden()

    # the item handled to the end (the item page's walk is test_browser_items.py) ...
    for action, body in (
        ("accept", {}),
        ("opinion", {"decision": "分期发放补偿款", "legal_basis": "《土地管理法》第四十八条"}),
        ("conclude", {"petitioner_waived": True}),
    ):
        await _post(phone, f"/api/items/{item['id']}/{action}", body)
    await phone.reload()
    await closing.get_by_text("事项已办结但尚未化解").wait_for()
    assert await phone.locator("#close-case").is_hidden()
    await _post(phone, f"/api/items/{item['id']}/outcome", {"outcome": "support", "resolved": True})

    # ... and the case closed by the leader from the phone
    await phone.reload()
    await closing.get_by_text("事项已办结并已化解，可以销号").wait_for()
    assert await _axe(phone, "backlog-case-closable-phone") == []
    await phone.get_by_role("button", name="销号（结案）").click()
    await phone.locator("#close-msg").get_by_text("已销号").wait_for()
    await closing.get_by_text("（Dongfeng）").wait_for()
    assert await phone.locator("#close-case").is_hidden()
    await phone.locator("#lang").click()
    await closing.get_by_text("Closed on").wait_for()
    assert await _axe(phone, "backlog-case-closed-phone-en") == []
    await phone.goto("/backlog")
    await phone.locator(f'#cases li[data-case="{case["id"]}"] [data-closed]').wait_for()
