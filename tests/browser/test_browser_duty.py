"""/duty: the bureau's leader puts himself on duty for today by choosing from the roster; a
reception officer sees it read only; a terminal's visit for the leader on duty reaches him.

Today is counted in China, as the roster's days are: the page and the hub agree even after
16:00 UTC, when a UTC host's calendar is still on the day before.
"""

from __future__ import annotations

import pytest

from records.base import utcnow
from records.deadlines import local_date
from tests.browser.conftest import Gateway, Open
from tests.browser.test_browser_pages import _axe  # the one axe helper (its path may move)

pytestmark = pytest.mark.browser

BUREAU = "QX-XFJ"


async def test_the_leader_on_duty_set_on_the_roster_takes_the_leader_visit(
    gateway: Gateway, open_page: Open
) -> None:
    today = local_date(utcnow()).isoformat()
    bureau = gateway.seed.units[BUREAU]

    leader = await open_page("/duty", login="leader")
    row = leader.locator(f'#roster tr[data-unit="{bureau}"]')
    choice = row.locator(f'select[data-day="{today}"]')
    await choice.wait_for()
    assert await choice.input_value() == ""
    await choice.select_option(label="Leader")
    await leader.locator("#msg").get_by_text("已保存").wait_for()
    # saved: "nobody" is no longer offered for that day (there is no route to clear it)
    await row.locator(f'select[data-day="{today}"] option[value=""]').wait_for(state="detached")
    assert await row.locator(f'select[data-day="{today}"]').input_value() == str(
        gateway.seed.account_ids["leader"]
    )
    assert await _axe(leader, "duty-leader") == []

    reception = await open_page("/duty", login="reception")
    cell = reception.locator(f'#roster tr[data-unit="{bureau}"] td[data-day="{today}"]')
    await cell.get_by_text("Leader").wait_for()
    assert await cell.locator("select").count() == 0
    await reception.locator("#lang").click()
    await reception.get_by_role("heading", name="Leaders on duty").first.wait_for()
    assert await _axe(reception, "duty-reception-en") == []

    # a terminal asks for the leader on duty (the kiosk's signal, as its page would)
    kiosk = await open_page(f"/kiosk#token={gateway.seed.terminals['QX-DFJD-HPSQ']}")
    await kiosk.locator("#v-idle").wait_for(state="visible")
    await kiosk.evaluate(
        "window.__pg.signal.request('visit.request', {category: 'other', to_leader: true})"
    )
    console = await leader.context.new_page()
    await console.goto("/console")
    await console.locator("#queue li").get_by_text("值班领导").wait_for()
