"""Screen sharing that outlives a network blip, and sharing on the training page.

A conference convener shares a tab with a case document and their page has a network blip
(its signaling socket dropped without a close frame while the browser is offline, as in
test_browser_kiosk): the page rejoins the session on a new RTCPeerConnection, which must go on
sending the shared tab. What the other official notices is asserted on their page: the
convener's tile shows the document again (not the camera) and keeps playing, and the convener's
button still says 停止共享; stopping then brings the camera back.

On the training page the trainer shares a tab: the share button follows the share (停止共享,
then 共享屏幕 once the shared tab is closed) and a viewer sees the document while it is shared.

Both run in the Chromium that shares a tab by its title (`browser_kit.sharing_browser`).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.browser_kit import (
    ABANDON_SOCKET,
    T,
    conference_with_an_official,
    frames_rising,
    invite_link,
    screenshot,
    share_a_document,
    share_label,
    sharing_browser,
    shows,
    start_session,
    wait_for,
)
from tests.browser.conftest import Gateway, Open

pytestmark = pytest.mark.browser

browser = sharing_browser  # this module's pages run in the Chromium that shares a tab

SELF_TILE = "#grid figure.self video"


def _tile(pid: str) -> str:
    return f'#grid figure[data-participant="{pid}"] video'


async def _blip(page: Any) -> None:
    """About three seconds without network; the page's socket dropped without a close frame."""
    conn = page.locator("#conn")
    await page.context.set_offline(True)
    await page.evaluate(ABANDON_SOCKET)
    await conn.get_by_text("网络中断").wait_for(timeout=5_000 * T)
    await page.wait_for_timeout(3000)  # the length of the blip, not an assertion
    assert "网络中断" in (await conn.text_content() or ""), "reconnected while offline"
    await page.context.set_offline(False)
    await conn.get_by_text("已连接").wait_for(timeout=15_000 * T)


async def test_share_goes_on_after_a_network_blip(gateway: Gateway, open_page: Open) -> None:
    convener, official = await conference_with_an_official(
        gateway, open_page, "征地补偿会商", "自然资源局工作人员"
    )
    session_id = await convener.evaluate("window.__pg.client.session")
    convener_pid = await convener.evaluate("window.__pg.client.me")
    tile = _tile(convener_pid)
    await frames_rising(official, publisher=convener_pid, within=30)
    await shows(official, tile, "camera")

    await share_a_document(convener, official, tile)

    # the convener's network goes for a moment; the page rejoins on a new connection
    old_pc = await convener.evaluate_handle("window.__pg.links[0].pc")
    await _blip(convener)
    await convener.locator("#v-room").wait_for(state="visible", timeout=5_000 * T)
    assert await convener.evaluate("window.__pg.client.session") == session_id
    assert await convener.evaluate("window.__pg.client.me") == convener_pid

    async def new_connection() -> bool:
        return bool(
            await convener.evaluate(
                "(old) => window.__pg.links.length === 1 && window.__pg.links[0].pc !== old"
                " && old.connectionState === 'closed'",
                old_pc,
            )
        )

    await wait_for("the convener's page to be on a new connection", new_connection, 15)

    # the other official sees the shared tab again, live, from the new connection
    await frames_rising(official, publisher=convener_pid, within=20)
    await shows(official, tile, "document")
    await frames_rising(official, publisher=convener_pid)
    await shows(official, tile, "document")
    await shows(convener, SELF_TILE, "document")
    assert (await convener.locator("#share").text_content() or "").strip() == "停止共享"
    await screenshot(official, "share-after-blip")

    # stopping brings the camera back for the other official
    await convener.get_by_role("button", name="停止共享").click()
    await share_label(convener, "共享屏幕")
    await shows(official, tile, "camera")
    await frames_rising(official, publisher=convener_pid)
    await shows(official, tile, "camera")


async def test_training_share_button_follows_the_share(gateway: Gateway, open_page: Open) -> None:
    trainer = await start_session(open_page, "/training", "trainer", "信访接待规范培训")
    trainer_pid = await trainer.evaluate("window.__pg.client.me")
    await trainer.locator("#invite").click()
    link = await invite_link(trainer)
    viewer = await open_page(link.replace(gateway.url, ""))
    await viewer.locator("#v-call").wait_for(state="visible")
    tile = _tile(trainer_pid)
    await frames_rising(viewer, publisher=trainer_pid, within=30)
    await shows(viewer, tile, "camera")

    # the trainer shares a tab: the button says so, the viewer sees the tab, live
    document = await share_a_document(trainer, viewer, tile)
    await frames_rising(viewer, publisher=trainer_pid)
    await shows(viewer, tile, "document")
    await screenshot(viewer, "training-share-seen-by-viewer")

    # the shared tab is closed (the browser ends the capture): button and viewer follow
    await document.close()
    await share_label(trainer, "共享屏幕")
    await shows(viewer, tile, "camera")
    await frames_rising(viewer, publisher=trainer_pid)
    await shows(trainer, SELF_TILE, "camera")

    # and the button shares again
    document = await share_a_document(trainer, viewer, tile)
