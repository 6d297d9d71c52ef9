"""/library: the text search finds recordings by the category's label, not only its key."""

from __future__ import annotations

from typing import Any

import pytest

from records import sessions
from records.enums import SessionKind
from tests.browser.conftest import Gateway, Open

pytestmark = pytest.mark.browser

UNIT = "QX-XFJ-JDZX"  # the reception centre: the "reception" account's unit


async def _recorded_visit(gateway: Gateway, title: str, category: str) -> int:
    async with gateway.store.transaction() as tx:
        s = await sessions.create_session(
            tx,
            kind=SessionKind.VISIT,
            unit_id=gateway.seed.units[UNIT],
            title=title,
            category=category,
            recorded=True,
        )
        await sessions.upsert_recording(
            tx, s.id, f"{s.id}/resident.webm", participant_id=None, codec="vp8", state="complete"
        )
        recs = await sessions.recordings_of(tx, s.id)
    return recs[0].id


async def _search(page: Any, text: str) -> list[int]:
    await page.locator("#f-text").fill(text)
    async with page.expect_response(lambda r: "/api/sessions?" in r.url):
        await page.get_by_role("button", name="搜索", exact=True).click()
    await page.wait_for_function(
        "() => !document.querySelector('#results').dataset.busy", polling=100
    )
    found: list[int] = await page.eval_on_selector_all(
        "#results li[data-recording]", "els => els.map(e => Number(e.dataset.recording))"
    )
    return found


async def test_search_finds_recordings_by_the_categorys_chinese_label(
    gateway: Gateway, open_page: Open
) -> None:
    housing = await _recorded_visit(gateway, "违建影响采光", "housing")
    labour = await _recorded_visit(gateway, "拖欠工资", "labour")
    page = await open_page("/library", login="reception")
    await page.locator("#results li").first.wait_for()
    for text in ("房屋", "房屋与拆迁", "拆迁", "housing", "Housing and demolition"):
        assert await _search(page, text) == [housing], text
    assert await _search(page, "劳动") == [labour]
    assert sorted(await _search(page, "视频信访")) == sorted([housing, labour])
    assert await _search(page, "土地") == []
