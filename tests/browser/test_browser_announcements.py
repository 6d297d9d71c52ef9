"""/announcements: the bureau's leader publishes to two communities of two sub-districts,
chosen from the org tree (the default is the whole district, not the leader's own unit, which
has no terminals); the kiosks there show it at once, a kiosk elsewhere does not; the list says
which terminals showed it; withdrawn, it leaves the kiosk showing it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Gateway, Open
from tests.browser.test_browser_pages import _axe  # the one axe helper (its path may move)

pytestmark = pytest.mark.browser

TITLE = "社区停水通知"


async def _kiosk(gateway: Gateway, open_page: Open, community: str) -> Any:
    page = await open_page(f"/kiosk#token={gateway.seed.terminals[community]}")
    await page.locator("#v-idle").wait_for(state="visible")
    return page


async def test_published_to_two_communities_shown_there_only_then_withdrawn(
    gateway: Gateway, open_page: Open
) -> None:
    heping = await _kiosk(gateway, open_page, "QX-DFJD-HPSQ")
    xinyuan = await _kiosk(gateway, open_page, "QX-DFJD-XYSQ")

    leader = await open_page("/announcements", login="leader")
    district = leader.locator(f'input[data-unit="{gateway.seed.units["QX"]}"]')
    await district.wait_for()
    assert await district.is_checked()
    own = leader.locator(f'input[data-unit="{gateway.seed.units["QX-XFJ"]}"]')
    assert not await own.is_checked()
    await district.uncheck()
    await leader.get_by_label("和平社区").check()
    await leader.get_by_label("滨河社区").check()
    assert "和平社区、滨河社区" in await leader.locator("#reach").inner_text()
    await leader.get_by_label("标题").fill(TITLE)
    await leader.get_by_label("内容").fill("周三上午8时至12时停水，请提前储水。")
    assert await leader.locator("#pv-title").inner_text() == TITLE
    await leader.get_by_role("button", name="发布", exact=True).click()
    await leader.locator("#msg").get_by_text("已发布到 2 个单位").wait_for()
    await leader.locator("#rows tr").nth(1).wait_for()
    assert await _axe(leader, "announcements") == []

    # live on the kiosk there, on connect at the other community, not in a third one
    await heping.locator("#ann-list").get_by_text(TITLE).wait_for()
    binhe = await _kiosk(gateway, open_page, "QX-HHJD-BHSQ")
    await binhe.locator("#ann-list").get_by_text(TITLE).wait_for()
    await xinyuan.wait_for_timeout(1000)
    assert TITLE not in (await xinyuan.locator("body").inner_text())

    # the list says which terminals showed it: each community's one terminal, by name
    row = leader.locator(f'#rows tr[data-unit="{gateway.seed.units["QX-DFJD-HPSQ"]}"]')
    for unit in ("QX-DFJD-HPSQ", "QX-HHJD-BHSQ"):
        shown = leader.locator(f'#rows tr[data-unit="{gateway.seed.units[unit]}"] [data-shown]')
        for _ in range(20):  # the kiosk's receipt arrives just after it shows the text
            await leader.reload()
            await shown.wait_for()
            if await shown.get_attribute("data-shown") == "1":
                break
            await leader.wait_for_timeout(250)
        assert "已送达 1/1 台终端" in await shown.inner_text()
    await row.get_by_text("已送达 1/1 台终端").click()  # the names on demand
    await row.locator("details li").get_by_text("和平社区").wait_for()
    assert await _axe(leader, "announcements-delivered") == []

    # withdrawn for 和平社区: that kiosk drops it at once, 滨河社区's keeps it
    await row.get_by_role("button", name="撤回").click()
    await row.locator('[data-status="withdrawn"]').wait_for()
    await heping.locator("#ann-list").get_by_text(TITLE).wait_for(state="detached")
    assert TITLE in await binhe.locator("#ann-list").inner_text()

    await leader.locator("#lang").click()
    await row.get_by_text("Withdrawn").wait_for()
    assert await _axe(leader, "announcements-en") == []

    # a reception officer reads the list but has nothing to publish or withdraw with
    reception = await open_page("/announcements", login="reception")
    await reception.locator("#rows").get_by_text(TITLE).first.wait_for()
    assert await reception.locator("#compose").is_hidden()
    assert "领导或管理员" in await reception.locator("main").inner_text()
    assert await reception.get_by_role("button", name="撤回").count() == 0
