"""Helpers the browser tests share: media figures from the pages, polling, screenshots."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, _need_chromium

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: scalable time unit for waits (slow CI machines may raise it)
T = float(os.environ.get("GATEWAY_TEST_TIMEOUT_UNIT", "1.0"))


async def stats(page: Any) -> dict[str, Any]:
    """The page's media figures (see web/static/js/media.js)."""
    result: dict[str, Any] = await page.evaluate("window.__pg.stats()")
    return result


DIAGNOSE = """
async () => {
  const out = {pcs: [], videos: []};
  for (const link of window.__pg.links) {
    const pc = link.pc;
    const rtp = [];
    const codecs = {};
    (await pc.getStats()).forEach((s) => {
      if (s.type === "codec") codecs[s.id] = `${s.mimeType}/${s.payloadType}`;
      if (s.type === "inbound-rtp") rtp.push(s);
    });
    out.pcs.push({
      state: pc.connectionState, signaling: pc.signalingState,
      tracks: [...link.tracks.values()],
      transceivers: pc.getTransceivers().map((t) => [t.mid, t.direction, t.currentDirection,
                                                     t.receiver.track && t.receiver.track.id]),
      inbound: rtp.map((s) => ({mid: s.mid, kind: s.kind, ssrc: s.ssrc, codec: codecs[s.codecId],
        packets: s.packetsReceived, lost: s.packetsLost, discarded: s.packetsDiscarded,
        bytes: s.bytesReceived, framesReceived: s.framesReceived, framesDecoded: s.framesDecoded,
        keyFrames: s.keyFramesDecoded, framesDropped: s.framesDropped, pli: s.pliCount,
        nack: s.nackCount, samples: s.totalSamplesReceived, concealed: s.concealedSamples,
        energy: s.totalAudioEnergy, emitted: s.jitterBufferEmittedCount,
        track: s.trackIdentifier})),
    });
  }
  for (const v of document.querySelectorAll("video")) {
    const so = v.srcObject;
    out.videos.push({paused: v.paused, ready: v.readyState, muted: v.muted,
      tracks: so ? so.getTracks().map((t) => [t.kind, t.id, t.readyState, t.muted]) : null});
  }
  return out;
}
"""


async def diagnose(page: Any) -> Any:
    """What the page's connections receive and what its video elements play (for failures)."""
    return await page.evaluate(DIAGNOSE)


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """Poll ``check`` until true or fail naming ``what``."""
    deadline = time.monotonic() + within * T
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def frames_rising(page: Any, publisher: str | None = None, within: float = 20.0) -> int:
    """Wait until video frames from ``publisher`` (or anyone) are decoded and still rising."""

    async def frames() -> int:
        s = await stats(page)
        if publisher is None:
            return int(s["framesDecoded"])
        return int(s["byPublisher"].get(publisher, {}).get("frames", 0))

    first: list[int] = []

    async def rising() -> bool:
        n = await frames()
        if not first:
            if n > 0:
                first.append(n)
            return False
        return n > first[0] + 5

    try:
        await wait_for(f"video frames from {publisher or 'anyone'}", rising, within)
    except AssertionError as exc:
        # say what did arrive: packets without decoded frames point at the media path
        raise AssertionError(
            f"{exc}; page media figures: {await stats(page)}; details: {await diagnose(page)}"
        ) from None
    return await frames()


async def screenshot(page: Any, name: str) -> None:
    """Save a screenshot under test-artifacts/ (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def audio_heard(page: Any, publisher: str, within: float = 20.0) -> None:
    """Wait until audio from ``publisher`` is received and decoded to non-silence."""

    async def heard() -> bool:
        s = (await stats(page))["byPublisher"].get(publisher, {})
        return bool(s.get("audioPackets", 0) > 20 and s.get("audioEnergy", 0) > 0)

    try:
        await wait_for(f"audio from {publisher}", heard, within)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; page media figures: {await stats(page)}; details: {await diagnose(page)}"
        ) from None


async def ask_for_a_visit(kiosk: Any, matter: str) -> None:
    """On a kiosk: pick the matter, call the reception, wait for the queue view."""
    await kiosk.get_by_role("button", name=matter).click()
    await kiosk.get_by_role("button", name="呼叫接访人员").click()
    await kiosk.locator("#v-queue").wait_for(state="visible")


# How a page loses its signaling connection in a network blip: Chromium's offline mode stalls an
# open WebSocket without closing it, so the page gives its socket up from page JS, as Chromium
# does on a network change: no close frame goes out, and the hub learns of the loss only by
# its heartbeat, after the page has come back on a new connection.
ABANDON_SOCKET = """() => {
    const ws = window.__pg.signal.ws;
    const lost = ws.onclose;
    ws.onmessage = null;
    ws.onclose = null;
    lost();
}"""


# Screen sharing. Chromium picks the shared tab by its title
# (`--auto-select-tab-capture-source-by-title`) only without `--use-fake-ui-for-media-stream`:
# that flag answers every `getDisplayMedia` with a fake screen (the camera's own pattern at
# 1280×720). So sharing tests launch their own Chromium without it (`sharing_browser`) and grant
# camera and microphone to every context instead.
SHARED_TITLE = "pg-share-case-file"
SHARE_ARGS = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"] + [
    f"--auto-select-tab-capture-source-by-title={SHARED_TITLE}"
]
#: the tab that gets shared: a red page with a moving bar (so the capture has new frames)
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
async def sharing_browser() -> AsyncIterator[Any]:
    """Headless Chromium that shares the tab titled SHARED_TITLE without asking.

    A module uses it for its pages with ``browser = sharing_browser``.
    """
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


async def shows(page: Any, selector: str, what: str, within: float = 20.0) -> None:
    """Wait until the <video> at ``selector`` shows the shared tab (``"document"``) or camera."""
    check = _is_document if what == "document" else _is_camera
    seen: list[Any] = [None]

    async def showing() -> bool:
        seen[0] = await page.evaluate(PICTURE, selector)
        return seen[0] is not None and check(seen[0])

    try:
        await wait_for(f"{selector} to show the {what}", showing, within)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it shows {seen[0]}") from None


async def share_label(page: Any, text: str) -> None:
    """Wait until the page's share button says ``text``."""
    await page.locator("#share").filter(has_text=text).wait_for(timeout=10_000 * T)


async def invite_link(page: Any) -> str:
    """On the room page: the invite link once the 邀请 form has made it."""

    async def ready() -> bool:
        value: str = await page.locator("#inv-link").input_value()
        return value.startswith("http")

    await wait_for("invite link", ready)
    link: str = await page.locator("#inv-link").input_value()
    return link


async def start_session(
    open_page: Any, path: str, login: str, title: str, kind: str | None = None
) -> Any:
    """``login`` opens ``path`` (/room or /training), starts a session titled ``title`` (of
    ``kind``, where the page offers a choice) and is in its room; returns the page."""
    page = await open_page(path, login=login)
    if kind is not None:
        await page.locator("#kind").select_option(kind)
    await page.locator("#title-in").fill(title)
    await page.get_by_role("button", name="发起", exact=True).click()
    await page.locator("#v-room").wait_for(state="visible")
    return page


async def conference_with_an_official(
    gateway: Any, open_page: Any, title: str, name: str
) -> tuple[Any, Any]:
    """The mediator starts a conference, invites an official ``name`` and admits them.

    Returns the convener's page and the official's, both in the call.
    """
    convener = await start_session(open_page, "/room", "mediator", title, kind="conference")
    await convener.locator("#inv-role").select_option("official")
    await convener.locator("#inv-name").fill(name)
    await convener.locator("#invite button[type=submit]").click()
    link = await invite_link(convener)
    official = await open_page(link.replace(gateway.url, ""))
    await official.locator("#v-lobby").wait_for(state="visible")
    await convener.get_by_role("button", name=f"准入 {name}").click()
    await official.locator("#v-call").wait_for(state="visible")
    return convener, official


async def share_a_document(sharer: Any, watcher: Any, tile: str) -> Any:
    """``sharer`` opens the case-file tab and shares it; ``watcher`` sees it in ``tile``.

    Returns the shared tab's page (closing it ends the capture).
    """
    document = await sharer.context.new_page()
    await document.set_content(DOCUMENT)
    await sharer.get_by_role("button", name="共享屏幕").click()
    await share_label(sharer, "停止共享")
    await shows(watcher, tile, "document")
    return document
