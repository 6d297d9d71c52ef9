"""Every page: an accessibility check (vendored axe-core) and a screenshot; reload keeps place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.browser_kit import ask_for_a_visit, frames_rising, screenshot
from tests.browser.conftest import Gateway, Open

pytestmark = pytest.mark.browser

#: a test tool, kept with its licence under tests/: the gateway never serves it
AXE = Path(__file__).resolve().parent / "vendor" / "axe" / "axe.min.js"
SERIOUS = """
axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
  .filter(v => v.impact === "serious" || v.impact === "critical")
  .map(v => ({id: v.id, impact: v.impact,
               nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))})))
"""


async def _axe(page: Any, name: str) -> list[Any]:
    # evaluated through the DevTools protocol, which the pages' CSP (no inline scripts) allows;
    # add_script_tag(path=...) would insert an inline <script> the CSP refuses
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    violations: list[Any] = await page.evaluate(SERIOUS)
    await screenshot(page, f"page-{name}")
    return [(name, v) for v in violations]


async def test_every_page_is_accessible(gateway: Gateway, open_page: Open) -> None:
    found: list[Any] = []
    official = await open_page("/console", login="reception")
    await official.locator("#queue-empty").wait_for()
    found += await _axe(official, "console")
    for path, ready in (
        ("/room", "#v-start"),
        ("/training", "#v-start"),
        ("/library", "#results li"),
        ("/dashboard", "#kinds svg, #kinds p"),
        ("/report", "#doc h1"),
    ):
        await official.goto(path)
        await official.locator(ready).first.wait_for()
        found += await _axe(official, path.strip("/"))
    # English switch on a page, then back
    await official.locator("#lang").click()
    await official.get_by_role("heading", name="Statistics").wait_for()
    found += await _axe(official, "dashboard-en")
    await official.locator("#lang").click()

    kiosk = await open_page(f"/kiosk#token={gateway.seed.terminals['QX-DFJD-XYSQ']}")
    await kiosk.locator("#v-idle").wait_for(state="visible")
    found += await _axe(kiosk, "kiosk")
    for path, ready in (
        ("/lookup", "#lookup"),
        ("/login", "#login"),
        ("/join", "#v-invalid"),
        ("/field", "#v-start"),
    ):
        page = await open_page(path)
        await page.locator(ready).wait_for(state="visible")
        found += await _axe(page, path.strip("/"))
    assert not found, found


async def test_reload_keeps_queue_place_and_call(gateway: Gateway, open_page: Open) -> None:
    first = await open_page(f"/kiosk#token={gateway.seed.terminals['QX-DFJD-HPSQ']}")
    second = await open_page(f"/kiosk#token={gateway.seed.terminals['QX-DFJD-XYSQ']}")
    for kiosk in (first, second):
        await ask_for_a_visit(kiosk, "其他事项")
    assert await second.locator("#position").get_attribute("data-position") == "2"
    session = await second.evaluate("window.__pg.kiosk.session")
    await second.reload()
    await second.locator("#v-queue").wait_for(state="visible")
    assert await second.evaluate("window.__pg.kiosk.session") == session
    assert await second.locator("#position").get_attribute("data-position") == "2"

    console = await open_page("/console", login="reception")
    await console.locator("#queue li").nth(1).wait_for()
    await console.locator("#queue li button.accept").first.click()
    await first.locator("#v-call").wait_for(state="visible")
    await second.locator('#position[data-position="1"]').wait_for()
    await frames_rising(console)
    call = await console.evaluate("window.__pg.console.session")
    await console.reload()
    await console.locator("#call").wait_for(state="visible")
    assert await console.evaluate("window.__pg.console.session") == call
    # the reloaded console renders the terminal again, and the terminal renders it
    await frames_rising(console, within=30)
    await frames_rising(first, within=30)
