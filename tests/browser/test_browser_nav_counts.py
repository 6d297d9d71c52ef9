"""Counts in the navigation: an item assigned to the housing bureau shows as 待签收 there until
acknowledged; an overdue one as 超期; both in the page's language, refreshed after an action."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from records.base import utcnow
from records.deadlines import local_date
from records.item_models import ItemRow
from tests.browser.conftest import Gateway, Open
from tests.browser.test_browser_items import _act, _register
from tests.browser.test_browser_pages import _axe  # the one axe helper (its path may move)

pytestmark = pytest.mark.browser


async def test_badges_follow_the_work(gateway: Gateway, open_page: Open) -> None:
    reception = await open_page("/items", login="reception")
    first = await _register(reception)
    second = await _register(reception)
    me = await (await reception.context.request.get("/api/me")).json()
    for item in (first, second):
        resp = await reception.context.request.post(
            f"/api/items/{item['id']}/assign",
            data={"to_unit_id": gateway.seed.units["QX-ZJJ"]},
            headers={"X-CSRF-Token": me["csrf_token"]},
        )
        assert resp.ok, await resp.text()

    housing = await open_page(f"/items/{first['lookup_code']}", login="housing")
    nav = housing.locator("header.bar nav")
    await nav.get_by_role("link", name="待签收 2").wait_for()
    assert await nav.locator('[data-count="overdue"]').count() == 0
    assert await _axe(housing, "nav-counts") == []

    # acknowledged on the item page: the count follows at once
    await housing.locator("#item").wait_for(state="visible")
    await _act(housing, "acknowledge")
    await nav.get_by_role("link", name="待签收 1").wait_for()

    # the other one's acknowledgement deadline has passed
    yesterday = local_date(utcnow()) - dt.timedelta(days=1)
    async with gateway.store.transaction() as tx:
        await tx.execute(update(ItemRow).where(ItemRow.id == second["id"]).values(due_on=yesterday))
    await housing.goto("/backlog")
    await nav.get_by_role("link", name="超期 1").wait_for()
    await housing.locator("#lang").click()
    await nav.get_by_role("link", name="1 overdue").wait_for()
    await nav.get_by_role("link", name="1 to acknowledge").wait_for()
    assert await _axe(housing, "nav-counts-en") == []
