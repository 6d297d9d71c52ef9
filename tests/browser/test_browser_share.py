"""Screen sharing in a conference: the other participant sees the shared tab, then the camera.

The convener (an official) shares a browser tab with a case document (`getDisplayMedia`, the
room's 共享屏幕 button, `replaceTrack` on the camera's sender) while an invited department
official watches. What that official would notice is asserted on their page: the convener's
tile turns from Chromium's fake camera (green pattern, 4:3) into the document (red page with the
tab's 1280×860 shape) and keeps playing; after 停止共享, after the shared tab is closed (the
browser ends the capture) and once the session has ended, the camera comes back or the capture
is gone.

Chromium picks the shared tab by its title (`--auto-select-tab-capture-source-by-title`) only
without `--use-fake-ui-for-media-stream`: that flag answers every `getDisplayMedia` with a fake
screen (the camera's own pattern at 1280×720). So this module runs in its own Chromium without
it (`browser_kit.sharing_browser`), with camera and microphone granted to every context.
"""

from __future__ import annotations

import pytest

from tests.browser.browser_kit import (
    DOCUMENT,
    conference_with_an_official,
    frames_rising,
    screenshot,
    share_a_document,
    share_label,
    sharing_browser,
    shows,
    wait_for,
)
from tests.browser.conftest import Gateway, Open

pytestmark = pytest.mark.browser

browser = sharing_browser  # this module's pages run in the Chromium that shares a tab


async def test_conference_screen_share_seen_by_the_other_official(
    gateway: Gateway, open_page: Open
) -> None:
    convener, official = await conference_with_an_official(
        gateway, open_page, "物业纠纷会商", "住建局工作人员"
    )
    convener_pid = await convener.evaluate("window.__pg.client.me")
    tile = f'#grid figure[data-participant="{convener_pid}"] video'
    self_tile = "#grid figure.self video"
    await frames_rising(official, publisher=convener_pid, within=30)
    await shows(official, tile, "camera")

    # share the case file's tab: the other official sees it, live, and the button says so
    document = await share_a_document(convener, official, tile)
    await frames_rising(official, publisher=convener_pid)
    await shows(official, tile, "document")
    await shows(convener, self_tile, "document")
    await screenshot(official, "share-seen-by-official")

    # stop with the button: the camera comes back for both
    await convener.get_by_role("button", name="停止共享").click()
    await share_label(convener, "共享屏幕")
    await shows(official, tile, "camera")
    await frames_rising(official, publisher=convener_pid)
    await shows(convener, self_tile, "camera")

    # share again, then close the shared tab (the browser ends the capture): camera and button
    await convener.get_by_role("button", name="共享屏幕").click()
    await shows(official, tile, "document")
    await document.close()
    await shows(official, tile, "camera")
    await share_label(convener, "共享屏幕")

    # share once more and end the session while sharing: the capture stops with the session
    document = await convener.context.new_page()
    await document.set_content(DOCUMENT)
    await convener.get_by_role("button", name="共享屏幕").click()
    await shows(official, tile, "document")
    await convener.evaluate("window.__shared = window.__pg.client.screen.getVideoTracks()[0]")
    await convener.locator("#outcome").select_option("concluded")
    await convener.get_by_role("button", name="结束", exact=True).click()
    await official.locator("#v-gone").wait_for(state="visible")
    await convener.locator("#v-gone").wait_for(state="visible")

    async def capture_ended() -> bool:
        state: str = await convener.evaluate("window.__shared.readyState")
        return state == "ended"

    await wait_for("the convener's screen capture to end with the session", capture_ended, 10)
