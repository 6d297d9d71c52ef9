"""The item page's forms beyond the main walk (test_browser_items.py), by clicking only.

The review window: the opinion delivered, a review asked within the window; on another item
whose window has run out, the request is refused and the page says why in words. The newer
records: a transfer out of the district, supervision (督办) from the bureau above, a rating a
petitioner without a phone gave to staff, and a walk-in visit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import update

from records.base import utcnow
from records.deadlines import local_date
from records.item_models import ItemEvent, ItemRow
from tests.browser.conftest import Gateway, Open
from tests.browser.test_browser_items import _act
from tests.browser.test_browser_pages import _axe  # the one axe helper (its path may move)

pytestmark = pytest.mark.browser


async def _post(page: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    me = await page.context.request.get("/api/me")
    csrf = (await me.json())["csrf_token"]
    resp = await page.context.request.post(path, data=body, headers={"X-CSRF-Token": csrf})
    assert resp.ok, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


async def _item(page: Any, gateway: Gateway, *, phone: str | None = "13700001111") -> Any:
    """An item the street (东风街道) registered and handles itself."""
    person: dict[str, Any] = {"name": "李四"}
    if phone:
        person["phone"] = phone
    return (
        await _post(
            page,
            "/api/items",
            {
                "type": "complaint",
                "channel": "visit",
                "category": "labour",
                "registering_unit_id": gateway.seed.units["QX-DFJD"],
                "request": "拖欠工资三个月",
                "petitioners": [person],
            },
        )
    )["item"]


async def _opinion(page: Any, item: dict[str, Any]) -> None:
    await _post(page, f"/api/items/{item['id']}/accept", {})
    await _post(
        page,
        f"/api/items/{item['id']}/opinion",
        {"decision": "责令用人单位支付工资", "legal_basis": "《劳动合同法》第三十条"},
    )


async def test_the_review_window(gateway: Gateway, open_page: Open) -> None:
    page = await open_page("/items", login="dongfeng")
    item = await _item(page, gateway)
    await _opinion(page, item)
    await page.goto(f"/items/{item['lookup_code']}")
    await page.locator('#state[data-state="opinion_issued"]').wait_for()

    # delivered, then the petitioner asks for a review within the window
    await _act(page, "deliver")
    await page.locator("#due").get_by_text("申请复查期限").wait_for()
    await _act(page, "review-request", {"reason": "对处理意见不服"})
    await page.locator('#state[data-state="review_requested"]').wait_for()
    assert "复查期限" in await page.locator("#due").inner_text()
    assert "请求复查" in await page.locator("#timeline").inner_text()

    # another item: its opinion was issued 40 days ago and the window ended 10 days ago
    late = await _item(page, gateway)
    await _opinion(page, late)
    today = local_date(utcnow())
    issued = dt.datetime.combine(today - dt.timedelta(days=40), dt.time(4), dt.UTC)
    async with gateway.store.transaction() as tx:
        await tx.execute(
            update(ItemEvent)
            .where(ItemEvent.item_id == late["id"], ItemEvent.type == "issue_opinion")
            .values(at=issued)
        )
        await tx.execute(
            update(ItemRow)
            .where(ItemRow.id == late["id"])
            .values(due_on=today - dt.timedelta(days=10))
        )
    await page.goto(f"/items/{late['lookup_code']}")
    await page.locator('#state[data-state="opinion_issued"]').wait_for()
    await page.locator('#actions button[data-action="review-request"]').click()
    form = page.locator('#action-form[data-action="review-request"]')
    await form.get_by_role("button", name="确认").click()
    ended = (today - dt.timedelta(days=10)).isoformat()
    await page.locator("#action-msg").get_by_text(f"已超过请求期限（{ended}前）").wait_for()
    assert await page.locator('#state[data-state="opinion_issued"]').count() == 1
    assert await _axe(page, "item-review-late") == []
    await page.locator("#lang").click()
    await page.locator("#state").get_by_text("Opinion issued").wait_for()
    await form.get_by_role("button", name="Confirm").click()
    await page.locator("#action-msg").get_by_text(f"the window ended on {ended}").wait_for()


async def test_transfer_out_supervision_a_staff_rating_and_a_visit(
    gateway: Gateway, open_page: Open
) -> None:
    street = await open_page("/items", login="dongfeng")

    # out of the district, to a city department
    away = await _item(street, gateway)
    await street.goto(f"/items/{away['lookup_code']}")
    await street.locator("#item").wait_for(state="visible")
    await street.locator('#actions button[data-action="transfer-out"]').click()
    assert await _axe(street, "item-transfer-out-form") == []
    await street.locator("#action-form").get_by_role("button", name="取消").click()
    await _act(
        street,
        "transfer-out",
        {"organ": "市人力资源和社会保障局", "organ_kind": "市级部门"},
    )
    await street.locator('#state[data-state="transferred_out"]').wait_for()
    assert "已转送区外机关" in await street.locator("#state").inner_text()
    assert "市人力资源和社会保障局" in await street.locator("#timeline").inner_text()

    # a petitioner without a phone told the street he is satisfied with the acceptance
    quiet = await _item(street, gateway, phone=None)
    await _post(street, f"/api/items/{quiet['id']}/accept", {})
    await street.goto(f"/items/{quiet['lookup_code']}")
    await street.locator('#state[data-state="accepted"]').wait_for()
    await _act(
        street,
        "evaluation",
        {"stage": "受理", "satisfied": "满意", "note": "来信表示满意"},
    )
    await street.locator("#summary").get_by_text("受理: 满意").wait_for()
    # and the same day he came with two others: a walk-in visit of three
    await _act(street, "visit", {"kind": "来访接待", "persons": "3"})
    await street.locator("#action-msg").get_by_text("已登记来访：3 人次").wait_for()
    visits = await (await street.context.request.get("/api/visits")).json()
    assert [(v["item_id"], v["persons"]) for v in visits["visits"]] == [(quiet["id"], 3)]
    assert await _axe(street, "item-rated-visit") == []

    # the street cannot supervise its own item; the bureau above can
    assert await street.locator('#more-actions button[data-action="supervise"]').count() == 0
    bureau = await open_page(f"/items/{quiet['lookup_code']}", login="leader")
    await bureau.locator("#item").wait_for(state="visible")
    due = (local_date(utcnow()) + dt.timedelta(days=10)).isoformat()
    await _act(bureau, "supervise", {"reason": "请加快办理", "due_on": due})
    await bureau.locator("#action-msg").get_by_text("已督办").wait_for()
    entry = bureau.locator("#supervisions li")
    await entry.get_by_text("请加快办理").wait_for()
    assert due in await entry.inner_text()
    assert await _axe(bureau, "item-supervised") == []
    await bureau.locator("#lang").click()
    await bureau.locator("#sv-h").get_by_text("Supervision").wait_for()
    await (
        bureau.locator('#more-actions button[data-action="visit"]')
        .get_by_text("Record a visit")
        .wait_for()
    )
    assert await _axe(bureau, "item-supervised-en") == []
