"""One person, two tabs in one session: the newer tab holds the place, no tug of war.

Issue 13, finding 11: a membership is held by one live connection. The hub closes the older
connection (close code 4001); its page says why and must not reconnect, or its resume token
would take the place back and the two tabs would take it from each other forever.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.browser.browser_kit import start_session
from tests.browser.conftest import Gateway, Open
from web import keys

pytestmark = pytest.mark.browser


async def test_a_second_tab_takes_the_place_and_the_first_stays_closed(
    gateway: Gateway, open_page: Open
) -> None:
    first = await start_session(open_page, "/room", "mediator", "两个窗口")
    sid = await first.evaluate("window.__pg.client.session")
    second = await first.context.new_page()  # same login, a tab of its own
    await second.goto("/room")
    await second.locator("#sid").fill(sid)
    await second.get_by_role("button", name="加入", exact=True).click()
    await second.locator("#v-room").wait_for(state="visible")

    await first.locator("#live", has_text="其他窗口或设备").wait_for()
    assert await first.evaluate("window.__pg.signal.closed") is True
    await asyncio.sleep(3)  # ws.js would have reconnected (and taken it back) by now
    assert await second.locator("#v-room").is_visible()
    assert "其他窗口" not in (await second.locator("#live").text_content() or "")
    mediator = f"account:{gateway.seed.account_ids['mediator']}"
    hub = gateway.app[keys.HUB]
    mine = [c for c in hub.conns.values() if c.principal and c.principal.ref == mediator]
    assert len(mine) == 1
    assert sid in mine[0].participants
