"""/items and /items/{code}: an official walks an item through its lifecycle by clicking only.

The item is registered in the console during a video visit from a community kiosk; from there
the reception centre assigns it to the housing bureau naming its handler, whose official
acknowledges, accepts, extends (approved by a bureau leader), issues the opinion, records its
delivery (the petitioner's review window counts from it) and concludes it, every step a
button and a form on the item page, and opens the notices it produced.
"""

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


async def _register(page: Any) -> dict[str, Any]:
    me = await page.context.request.get("/api/me")
    csrf = (await me.json())["csrf_token"]
    resp = await page.context.request.post(
        "/api/items",
        data={
            "type": "complaint",
            "channel": "video",
            "category": "housing",
            "request": "小区违建影响采光，请求处理",
            "facts": "邻楼加盖两层",
            "petitioners": [
                {"name": "张三丰", "phone": "13800001234", "id_number": "110101199001011234"}
            ],
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.ok, await resp.text()
    item: dict[str, Any] = (await resp.json())["item"]
    return item


async def _act(page: Any, action: str, fill: dict[str, str] | None = None) -> None:
    """Click the action's button, fill its form, confirm, and wait for the new state."""
    await page.locator(
        f'#actions button[data-action="{action}"], #more-actions button[data-action="{action}"]'
    ).click()
    form = page.locator(f'#action-form[data-action="{action}"]')
    await form.wait_for(state="visible")
    for name, value in (fill or {}).items():
        control = form.locator(f'[name="{name}"]')
        tag = await control.evaluate("e => e.tagName + ':' + (e.type || '')")
        if tag.startswith("SELECT"):
            await control.select_option(label=value)
        elif tag.endswith(":checkbox"):
            await control.check()
        else:
            await control.fill(value)
    await form.get_by_role("button", name="确认").click()
    await page.locator(f'#action-msg[data-done="{action}"]').wait_for()


async def _notice(page: Any, kind: str) -> str:
    link = page.locator(f'#notices li[data-notice="{kind}"] a')
    async with page.context.expect_page() as opened:
        await link.click()
    notice = await opened.value
    await notice.wait_for_load_state()
    text: str = await notice.locator("body").inner_text()
    await notice.close()
    return text


async def _has_code(msg: Any) -> bool:
    return bool(await msg.get_attribute("data-lookup-code"))


def _cn(day: str) -> str:
    y, m, d = (int(x) for x in day.split("-"))
    return f"{y}年{m}月{d}日"


async def test_an_item_walked_through_its_lifecycle_by_clicking(
    gateway: Gateway, open_page: Open
) -> None:
    # registered by the officer during a video visit from the Heping community's kiosk
    kiosk = await open_page(f"/kiosk#token={gateway.seed.terminals['QX-DFJD-HPSQ']}")
    reception = await open_page("/console", login="reception")
    await ask_for_a_visit(kiosk, "房屋与拆迁")
    await reception.get_by_role("button", name=re.compile("接听")).first.click()
    await kiosk.locator("#v-call").wait_for(state="visible")
    await frames_rising(reception)
    await reception.locator("#i-name").fill("张三丰")
    await reception.locator("#i-phone").fill("13800001234")
    await reception.locator("#i-request").fill("小区违建影响采光，请求处理")
    await reception.locator("#i-facts").fill("邻楼加盖两层")
    await reception.get_by_role("button", name="登记", exact=True).click()
    msg = reception.locator("#item-msg")
    await wait_for("item registered", lambda: _has_code(msg))
    code = await msg.get_attribute("data-lookup-code") or ""
    await reception.get_by_role("button", name="结束通话").click()
    await kiosk.locator("#receipt #lookup-code").get_by_text(code).wait_for(timeout=10_000)
    found = await reception.context.request.get(f"/api/items/lookup?code={code}")
    item = await found.json()

    # the list shows it with its state and channel in words; its code opens the item page
    await reception.goto("/items")
    row = reception.locator(f'#rows tr[data-item="{item["id"]}"]')
    await row.wait_for()
    assert "已登记" in (await row.inner_text())
    assert "视频信访" in (await row.inner_text())
    await reception.locator("#f-state").select_option(label="已受理")
    await reception.get_by_role("button", name="搜索", exact=True).click()
    await row.wait_for(state="detached")
    await reception.locator("#f-state").select_option(label="全部")
    await reception.get_by_label("登记日期至").fill("2020-01-01")
    await reception.get_by_role("button", name="搜索", exact=True).click()
    await reception.locator("#msg").get_by_text("没有符合条件的事项").wait_for()
    await reception.get_by_label("登记日期至").fill("")
    await reception.locator("#f-state").select_option(label="已登记")
    await reception.get_by_role("button", name="搜索", exact=True).click()
    await row.get_by_role("link", name=code).click()
    await reception.locator("#item").wait_for(state="visible")
    assert await _axe(reception, "items-item") == []

    # the petitioner is masked until asked
    people = reception.locator("#petitioners")
    assert "13800001234" not in await people.inner_text()
    assert "张三丰" not in await people.inner_text()
    await reception.locator("#reveal").click()
    await people.get_by_text("13800001234").wait_for()

    # a photo of the building, attached and listed
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    await reception.locator("#at-file").set_input_files(
        {"name": "违建照片.png", "mimeType": "image/png", "buffer": png}
    )
    await reception.get_by_role("button", name="上传", exact=True).click()
    await reception.locator("#upload-msg").get_by_text("已上传：违建照片.png").wait_for()
    await reception.locator("#attachments").get_by_role("link", name="违建照片.png").wait_for()

    # assigned to the housing bureau, naming its official as the handler
    await reception.locator('#actions button[data-action="assign"]').click()
    form = reception.locator('#action-form[data-action="assign"]')
    await form.locator('[name="to_unit_id"]').select_option(label="示例区住房和城乡建设局")
    handler = form.get_by_label("指定经办人（可选）")
    await handler.locator("option", has_text="Housing").wait_for(state="attached")
    await handler.select_option(label="Housing · 示例区住房和城乡建设局")
    assert await _axe(reception, "items-assign-form") == []
    await form.get_by_role("button", name="确认").click()
    await reception.locator('#state[data-state="assigned"]').wait_for()
    after = await (await reception.context.request.get(f"/api/items/{item['id']}")).json()
    assert gateway.seed.account_ids["housing"] in after["handler_account_ids"]

    # the housing bureau's official does the rest on the same page
    housing = await open_page(f"/items/{code}", login="housing")
    await housing.locator("#item").wait_for(state="visible")
    # units above the reader's scope are named too (the registering reception centre)
    assert "示例区群众来访接待中心" in await housing.locator("#summary").inner_text()
    await _act(housing, "acknowledge")
    await housing.locator('#state[data-state="received"]').wait_for()
    await _act(housing, "accept")
    await housing.locator('#state[data-state="accepted"]').wait_for()
    accepted_due = await housing.locator("#due").get_attribute("data-due")
    assert accepted_due
    due_text = await housing.locator("#due").inner_text()
    assert "办理期限" in due_text
    # the 60 days run into a year without an official holiday notice: marked as such
    provisional = gateway.app[keys.CALENDAR].is_provisional(dt.date.fromisoformat(accepted_due))
    assert due_text.endswith("（暂定）") is provisional, due_text

    acceptance = await _notice(housing, "acceptance")
    assert code in acceptance
    assert _cn(accepted_due) in acceptance

    await _act(
        housing,
        "extend",
        {"days": "15", "approved_by": "Leader · 示例区信访局", "reason": "需现场测量采光"},
    )
    extended_due = await housing.locator("#due").get_attribute("data-due")
    assert extended_due
    assert extended_due > accepted_due
    extension = await _notice(housing, "extension")
    assert code in extension
    assert _cn(extended_due) in extension
    assert "Leader" in extension

    await _act(
        housing,
        "opinion",
        {"decision": "责令限期拆除违建部分", "legal_basis": "《城乡规划法》第六十四条"},
    )
    await housing.locator('#state[data-state="opinion_issued"]').wait_for()
    opinion = await _notice(housing, "opinion")
    assert code in opinion
    assert "责令限期拆除违建部分" in opinion

    # delivered today: the review window runs from it and is the deadline shown
    await _act(housing, "deliver")
    await housing.locator("#due").get_by_text("申请复查期限").wait_for()
    window = await housing.locator("#due").get_attribute("data-due")
    assert window
    assert "意见送达" in await housing.locator("#timeline").inner_text()
    # concluding inside the window needs the petitioner's written waiver
    await housing.locator('#actions button[data-action="conclude"]').click()
    await housing.locator("#form-due").get_by_text(window).wait_for()
    await housing.locator("#form-cancel").click()
    await _act(housing, "conclude", {"petitioner_waived": "yes"})
    await housing.locator('#state[data-state="concluded"]').wait_for()

    # the timeline says who did what
    timeline = await housing.locator("#timeline").inner_text()
    for words in ("Reception", "Housing", "交办", "签收", "受理", "延期", "出具处理意见", "办结"):
        assert words in timeline, (words, timeline)
    assert re.search(r"\+15", timeline)
    assert await _axe(housing, "items-item-concluded") == []

    # and in English, states and actions are in English
    await housing.locator("#lang").click()
    await housing.locator("#state").get_by_text("Concluded").wait_for()
    assert "Concluded" in await housing.locator("#timeline").inner_text()
    await housing.goto("/items")
    await housing.locator(f'#rows tr[data-item="{item["id"]}"]').get_by_text("Video").wait_for()
    assert await _axe(housing, "items-list-en") == []


async def test_the_list_sorts_filters_by_handler_and_exports(
    gateway: Gateway, open_page: Open
) -> None:
    reception = await open_page("/items", login="reception")
    first = await _register(reception)
    second = await _register(reception)
    await reception.goto("/items")
    rows = reception.locator("#rows tr")
    await rows.nth(1).wait_for()
    assert await rows.nth(0).get_attribute("data-item") == second["id"]  # newest first

    await reception.get_by_label("排序").select_option(label="登记时间")
    await reception.get_by_label("顺序").select_option(label="从旧到新 / 从早到晚")
    await reception.get_by_role("button", name="搜索", exact=True).click()
    await reception.locator(f'#rows tr:first-child[data-item="{first["id"]}"]').wait_for()
    assert await rows.count() == 2
    assert await _axe(reception, "items-list-sorted") == []

    # named the handler of the second one: "mine" lists it alone
    me = await (await reception.context.request.get("/api/me")).json()
    resp = await reception.context.request.put(
        f"/api/items/{second['id']}/handlers/{gateway.seed.account_ids['reception']}",
        data={},
        headers={"X-CSRF-Token": me["csrf_token"]},
    )
    assert resp.ok, await resp.text()
    await reception.get_by_label("经办人").select_option(label="我经办的")
    await reception.get_by_role("button", name="搜索", exact=True).click()
    await reception.locator(f'#rows tr[data-item="{first["id"]}"]').wait_for(state="detached")
    assert await rows.count() == 1
    await reception.get_by_label("经办人").select_option(label="全部")
    await reception.get_by_role("button", name="搜索", exact=True).click()
    await rows.nth(1).wait_for()

    # the export is the list as filtered: both items, Chinese in a spreadsheet (BOM), masked
    async with reception.expect_download() as downloading:
        await reception.get_by_role("link", name="导出 CSV（当前筛选）").click()
    download = await downloading.value
    raw = (await download.path()).read_bytes()
    assert raw.startswith("\ufeff".encode())
    text = raw.decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0].startswith("查询码,状态,渠道")
    assert [line.split(",")[0] for line in lines[1:]] == [
        first["lookup_code"],
        second["lookup_code"],
    ]
    assert "13800001234" not in text
    assert "110101199001011234" not in text
    assert "张**" in text

    # a handler who handles none of them: nothing, and the export says the same
    await reception.get_by_label("经办人").select_option(label="Housing · 示例区住房和城乡建设局")
    await reception.get_by_role("button", name="搜索", exact=True).click()
    await reception.locator("#msg").get_by_text("没有符合条件的事项").wait_for()
    href = await reception.locator("#export").get_attribute("href") or ""
    assert "handler=" in href
    resp = await reception.context.request.get(href)
    assert (await resp.text()).strip().count("\n") == 0  # the header line alone
    await reception.locator("#lang").click()
    await reception.get_by_label("Sort by").wait_for()
    assert await _axe(reception, "items-list-handler-en") == []
