"""A whole video visit in three browser contexts: terminal, officer's console, invited lawyer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.browser_kit import frames_rising, screenshot, stats, wait_for
from tests.browser.conftest import Gateway, Open

pytestmark = pytest.mark.browser

COMMUNITY = "QX-DFJD-HPSQ"


async def test_whole_visit(gateway: Gateway, open_page: Open) -> None:
    kiosk = await open_page(f"/kiosk#token={gateway.seed.terminals[COMMUNITY]}")
    console = await open_page("/console", login="reception")
    await kiosk.get_by_role("button", name="房屋与拆迁").click()
    await kiosk.locator("#request").click()
    await kiosk.locator("#v-queue").wait_for(state="visible")
    await console.locator("#queue button.accept").first.click()
    await kiosk.locator("#v-call").wait_for(state="visible")
    await frames_rising(kiosk)
    await frames_rising(console)
    await screenshot(kiosk, "visit-kiosk-call")
    await screenshot(console, "visit-console-call")
