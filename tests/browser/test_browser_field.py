"""/field on a phone: the rear camera's picture on top, not mirrored, no empty tile."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.browser_kit import frames_rising, invite_link, screenshot, start_session
from tests.browser.conftest import Gateway, Open

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


async def test_field_unit_on_a_phone_shows_its_own_unmirrored_picture_only(
    gateway: Gateway, open_page: Open
) -> None:
    convener = await start_session(open_page, "/room", "leader", "现场回传", kind="field")
    await convener.locator("#inv-role").select_option("field")
    await convener.locator("#inv-name").fill("现场一组")
    await convener.locator("#invite button[type=submit]").click()
    link = await invite_link(convener)
    phone = await open_page(link.replace(gateway.url, ""), viewport=PHONE)
    await phone.locator("#v-live").wait_for(state="visible")
    field_pid = await phone.evaluate("window.__pg.client.me")
    await frames_rising(convener, publisher=field_pid)

    tiles: list[Any] = await phone.eval_on_selector_all(
        "#grid figure",
        """els => els.map(f => ({self: f.classList.contains('self'),
            empty: f.classList.contains('nomedia'), top: f.getBoundingClientRect().top,
            transform: getComputedStyle(f.querySelector('video')).transform}))""",
    )
    # only its own picture: the field unit receives nothing, so no black tile for the others
    assert [t["self"] for t in tiles] == [True], tiles
    assert not tiles[0]["empty"], tiles
    # the rear camera is not mirrored (text in the picture reads the right way round)
    assert tiles[0]["transform"] in ("none", "matrix(1, 0, 0, 1, 0, 0)"), tiles
    # and the picture starts in the top half of the screen
    assert tiles[0]["top"] < PHONE["height"] / 2, tiles
    await screenshot(phone, "field-phone")
