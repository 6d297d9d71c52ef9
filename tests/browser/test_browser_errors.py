"""What a person sees when something goes wrong is in the page's language and on the page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.browser_kit import ask_for_a_visit, screenshot, wait_for
from tests.browser.conftest import Gateway, Open

pytestmark = pytest.mark.browser

HEPING = "QX-DFJD-HPSQ"
#: an English word of the server's messages ("session", "found", "refused", …)
ENGLISH = re.compile(r"[A-Za-z]{4,}")


def _watch_404(page: Any, into: list[str]) -> None:
    page.on("response", lambda r: r.status == 404 and into.append(r.url))


async def test_a_kiosk_with_a_bad_token_says_not_activated_and_stays_so(open_page: Open) -> None:
    kiosk = await open_page("/kiosk#token=pgt_not-a-real-credential")
    await kiosk.locator("#v-notoken").wait_for(state="visible")
    conn = kiosk.locator("#conn")
    await conn.get_by_text("未激活").wait_for()
    await kiosk.wait_for_timeout(2500)  # longer than the first reconnect delays
    assert (await conn.text_content() or "") == "未激活"
    await kiosk.locator("#lang").click()
    assert (await conn.text_content() or "") == "Not activated"


async def test_the_losing_officer_of_a_double_accept_is_told_on_the_page(
    gateway: Gateway, open_page: Open
) -> None:
    kiosk = await open_page(f"/kiosk#token={gateway.seed.terminals[HEPING]}")
    await ask_for_a_visit(kiosk, "其他事项")
    missing: list[str] = []
    first = await open_page("/console", login="reception")
    second = await open_page("/console", login="reception")
    _watch_404(second, missing)
    for console in (first, second):
        await console.locator("#queue li button.accept").wait_for()
    # the history names a waiting visit in Chinese
    await second.locator("#history td[data-state=waiting]").wait_for()
    assert "排队中" in (await second.locator("#history").text_content() or "")

    # both click at about the same moment: the second console has not heard of the first
    # accept yet (its queue updates are held back), so its button is still there
    await second.evaluate(
        """() => {
          const s = window.__pg.signal;
          const emit = s._emit.bind(s);
          s._emit = (type, data) => (type === "queue.update" ? undefined : emit(type, data));
        }"""
    )
    await first.locator("#queue li button.accept").first.click()
    await kiosk.locator("#v-call").wait_for(state="visible")
    await second.locator("#queue li button.accept").first.click()
    msg = second.locator("#queue-msg")
    await msg.get_by_text("该来访已由其他工作人员接听").wait_for(state="visible")
    assert not ENGLISH.search(await msg.text_content() or "")
    await screenshot(second, "console-double-accept")

    # the history says 进行中 for the live visit, never the raw state
    await second.reload()
    await second.locator("#history td[data-state=live]").wait_for()
    history = await second.locator("#history").text_content() or ""
    assert "进行中" in history
    for raw in ("waiting", "live", "ended", "cancelled"):
        assert raw not in history, history
    assert not missing, missing


async def test_server_errors_are_shown_in_the_pages_language(
    gateway: Gateway, open_page: Open
) -> None:
    room = await open_page("/room", login="mediator")
    missing: list[str] = []
    _watch_404(room, missing)
    await room.reload()
    await room.locator("#v-start").wait_for(state="visible")
    await room.locator("#sid").fill("7cc02cfe")
    await room.get_by_role("button", name="加入", exact=True).click()
    msg = room.locator("#start-msg")
    await wait_for("an error on the page", lambda: _text(msg))
    text = await msg.text_content() or ""
    assert not ENGLISH.search(text), text
    assert "未找到" in text, text

    # the same in English
    await room.locator("#lang").click()
    await room.get_by_role("button", name="Join", exact=True).click()
    await wait_for("the English error", lambda: _has(msg, "Not found"))
    # no page asks for something that is not there (the favicon included)
    assert not missing, missing
    icon = await room.context.request.get("/favicon.ico")
    assert icon.ok
    assert icon.headers["content-type"].startswith("image/")


async def _text(loc: Any) -> bool:
    return bool((await loc.text_content() or "").strip())


async def _has(loc: Any, text: str) -> bool:
    return text in (await loc.text_content() or "")
