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
screen (the camera's own pattern at 1280×720). So this module launches its own Chromium without
it and grants camera and microphone to every context instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.browser.browser_kit import frames_rising, screenshot, wait_for
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, Gateway, Open, _need_chromium

pytestmark = pytest.mark.browser

SHARED_TITLE = "pg-share-case-file"
SHARE_ARGS = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"] + [
    f"--auto-select-tab-capture-source-by-title={SHARED_TITLE}"
]
#: the tab the convener shares: a red page with a moving bar (so the capture has new frames)
DOCUMENT = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>{SHARED_TITLE}</title><style>
body {{ margin: 0; height: 100vh; background: #c81414; color: #fff; font: 48px sans-serif; }}
#bar {{ position: absolute; top: 200px; width: 160px; height: 40px; background: #fff;
        animation: move 1.5s linear infinite alternate; }}
@keyframes move {{ from {{ left: 0 }} to {{ left: 900px }} }}
</style></head><body><h1>案件材料</h1><div id="bar"></div></body></html>"""
DOCUMENT_SHAPE = 1280 / 860  # the tab's viewport (the contexts' default in conftest)
CAMERA_SHAPE = 4 / 3  # Chromium's fake camera: 640×480, scaled down by the encoder at most

#: size and mean colour of what a tile's <video> shows right now (drawn into a small canvas)
PICTURE = """(selector) => {
  const v = document.querySelector(selector);
  if (!v || !v.videoWidth) return null;
  const c = document.createElement("canvas");
  c.width = 32;
  c.height = 24;
  const g = c.getContext("2d");
  g.drawImage(v, 0, 0, c.width, c.height);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) sum[k] += d[i + k];
  return {width: v.videoWidth, height: v.videoHeight, rgb: sum.map((x) => x / (d.length / 4))};
}"""


class _GrantingBrowser:
    """The launched browser, with camera and microphone granted to every new context."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser

    async def new_context(self, **kwargs: Any) -> Any:
        return await self._browser.new_context(permissions=["camera", "microphone"], **kwargs)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium that shares the tab titled SHARED_TITLE without asking."""
    _need_chromium()
    from playwright.async_api import async_playwright  # noqa: PLC0415

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=SHARE_ARGS, headless=True)
        try:
            yield _GrantingBrowser(b)
        finally:
            await b.close()


def _is_document(pic: dict[str, Any]) -> bool:
    r, g, b = pic["rgb"]
    shape = pic["width"] / pic["height"]
    return bool(r > 150 and g < 90 and b < 90 and abs(shape - DOCUMENT_SHAPE) < 0.05)


def _is_camera(pic: dict[str, Any]) -> bool:
    r, g, b = pic["rgb"]
    shape = pic["width"] / pic["height"]
    return bool(g > 100 and r < 70 and b < 70 and abs(shape - CAMERA_SHAPE) < 0.05)


async def _shows(page: Any, selector: str, what: str, within: float = 20.0) -> None:
    """Wait until the <video> at ``selector`` shows the document or the camera."""
    check = _is_document if what == "document" else _is_camera
    seen: list[Any] = [None]

    async def showing() -> bool:
        seen[0] = await page.evaluate(PICTURE, selector)
        return seen[0] is not None and check(seen[0])

    try:
        await wait_for(f"{selector} to show the {what}", showing, within)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it shows {seen[0]}") from None


async def _share_label(page: Any, text: str) -> None:
    await page.locator("#share").filter(has_text=text).wait_for(timeout=10_000)


async def _invite_link(page: Any) -> str:
    async def ready() -> bool:
        value: str = await page.locator("#inv-link").input_value()
        return value.startswith("http")

    await wait_for("invite link", ready)
    link: str = await page.locator("#inv-link").input_value()
    return link


async def test_conference_screen_share_seen_by_the_other_official(
    gateway: Gateway, open_page: Open
) -> None:
    convener = await open_page("/room", login="mediator")
    await convener.locator("#kind").select_option("conference")
    await convener.locator("#title-in").fill("物业纠纷会商")
    await convener.get_by_role("button", name="发起", exact=True).click()
    await convener.locator("#v-room").wait_for(state="visible")
    await convener.locator("#inv-role").select_option("official")
    await convener.locator("#inv-name").fill("住建局工作人员")
    await convener.locator("#invite button[type=submit]").click()
    link = await _invite_link(convener)

    official = await open_page(link.replace(gateway.url, ""))
    await official.locator("#v-lobby").wait_for(state="visible")
    await convener.get_by_role("button", name="准入 住建局工作人员").click()
    await official.locator("#v-call").wait_for(state="visible")
    convener_pid = await convener.evaluate("window.__pg.client.me")
    tile = f'#grid figure[data-participant="{convener_pid}"] video'
    self_tile = "#grid figure.self video"
    await frames_rising(official, publisher=convener_pid, within=30)
    await _shows(official, tile, "camera")

    # share the case file's tab: the other official sees it, live, and the button says so
    document = await convener.context.new_page()
    await document.set_content(DOCUMENT)
    await convener.get_by_role("button", name="共享屏幕").click()
    await _share_label(convener, "停止共享")
    await _shows(official, tile, "document")
    await frames_rising(official, publisher=convener_pid)
    await _shows(official, tile, "document")
    await _shows(convener, self_tile, "document")
    await screenshot(official, "share-seen-by-official")

    # stop with the button: the camera comes back for both
    await convener.get_by_role("button", name="停止共享").click()
    await _share_label(convener, "共享屏幕")
    await _shows(official, tile, "camera")
    await frames_rising(official, publisher=convener_pid)
    await _shows(convener, self_tile, "camera")

    # share again, then close the shared tab (the browser ends the capture): camera and button
    await convener.get_by_role("button", name="共享屏幕").click()
    await _shows(official, tile, "document")
    await document.close()
    await _shows(official, tile, "camera")
    await _share_label(convener, "共享屏幕")

    # share once more and end the session while sharing: the capture stops with the session
    document = await convener.context.new_page()
    await document.set_content(DOCUMENT)
    await convener.get_by_role("button", name="共享屏幕").click()
    await _shows(official, tile, "document")
    await convener.evaluate("window.__shared = window.__pg.client.screen.getVideoTracks()[0]")
    await convener.locator("#outcome").select_option("concluded")
    await convener.get_by_role("button", name="结束", exact=True).click()
    await official.locator("#v-gone").wait_for(state="visible")
    await convener.locator("#v-gone").wait_for(state="visible")

    async def capture_ended() -> bool:
        state: str = await convener.evaluate("window.__shared.readyState")
        return state == "ended"

    await wait_for("the convener's screen capture to end with the session", capture_ended, 10)
