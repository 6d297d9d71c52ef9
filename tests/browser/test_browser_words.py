"""Every page in both languages: no raw identifier in the Chinese text, and a screenshot of each
at desktop and phone width, zh and en (test-artifacts/words-<page>-<lang>-<width>.png)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from records import sessions
from records.enums import SessionKind, SessionState
from tests.browser.browser_kit import screenshot
from tests.browser.conftest import Gateway, Open

pytestmark = pytest.mark.browser

UNIT = "QX-XFJ-JDZX"
#: a lower-case identifier of six or more letters (a key, a state, an English message)
RAW = re.compile(r"\b[a-z_]{6,}\b")
#: the page's visible text outside code, inputs and URLs
VISIBLE_TEXT = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest("code, pre, kbd, samp, script, style, [hidden], .sr-only")) continue;
    if (!el.getClientRects().length) continue;
    const text = n.textContent.trim();
    if (text) out.push(text);
  }
  for (const el of document.querySelectorAll("[aria-label], [title], [placeholder]")) {
    if (el.closest("[hidden]")) continue;
    for (const a of ["aria-label", "title", "placeholder"]) {
      if (el.getAttribute(a)) out.push(el.getAttribute(a));
    }
  }
  return out.join("\\n");
}"""
URL = re.compile(r"(https?://|/)[^\s]*")
SIZES = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}


async def _some_history(gateway: Gateway) -> None:
    """A recorded, ended visit and a cancelled one, so lists have rows."""
    async with gateway.store.transaction() as tx:
        s = await sessions.create_session(
            tx,
            kind=SessionKind.VISIT,
            unit_id=gateway.seed.units[UNIT],
            title="违建影响采光",
            category="housing",
            recorded=True,
        )
        await sessions.upsert_recording(
            tx, s.id, f"{s.id}/a.webm", participant_id=None, codec="vp8", state="complete"
        )
        await sessions.set_state(tx, s.id, SessionState.LIVE)
        await sessions.set_state(tx, s.id, SessionState.ENDED, "done")
        c = await sessions.create_session(
            tx, kind=SessionKind.VISIT, unit_id=gateway.seed.units[UNIT], category="labour"
        )
        await sessions.set_state(tx, c.id, SessionState.CANCELLED, "left")


async def _raw_words(page: Any) -> list[str]:
    text = URL.sub(" ", await page.evaluate(VISIBLE_TEXT))
    return RAW.findall(text)


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_every_page_speaks_words_not_keys(
    gateway: Gateway, open_page: Open, size: str
) -> None:
    await _some_history(gateway)
    viewport = SIZES[size]
    pages: list[tuple[str, str | None, str]] = [
        ("/console", "reception", "#history tr"),
        ("/room", "mediator", "#v-start"),
        ("/training", "trainer", "#v-start"),
        ("/library", "reception", "#results li"),
        ("/dashboard", "leader", "#kinds svg, #kinds p"),
        ("/report", "leader", "#doc h1"),
        ("/items", "reception", "#msg"),
        ("/duty", "leader", "#roster tr"),
        ("/announcements", "leader", "#tree li"),
        ("/backlog", "dongfeng", "#list-msg"),
        (f"/kiosk#token={gateway.seed.terminals['QX-DFJD-HPSQ']}", None, "#v-idle"),
        ("/kiosk#token=pgt_unknown", None, "#v-notoken"),
        ("/lookup", None, "#lookup"),
        ("/login", None, "#login"),
        ("/join", None, "#v-invalid"),
        ("/field", None, "#v-start"),
    ]
    found: dict[str, list[str]] = {}
    for path, login, ready in pages:
        page = await open_page(path, login=login, viewport=viewport)
        await page.locator(ready).first.wait_for(state="visible")
        await page.wait_for_timeout(300)  # lists filled by later requests
        name = path.strip("/").split("#")[0] + ("-notoken" if "pgt_unknown" in path else "")
        raw = await _raw_words(page)
        if raw:
            found[name] = raw
        await screenshot(page, f"words-{name}-zh-{size}")
        await page.locator("#lang").click()
        await page.wait_for_timeout(300)
        await screenshot(page, f"words-{name}-en-{size}")
        await page.locator("#lang").click()  # back to Chinese for the next page
        await page.context.close()
    assert not found, found
