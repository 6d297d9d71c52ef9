"""A community terminal watches a live training, raises its hand under its community's name and
is let speak; an official picks the training from a list instead of typing its id."""

from __future__ import annotations

import pytest

from tests.browser.browser_kit import (
    T,
    frames_rising,
    invite_link,
    screenshot,
    start_session,
)
from tests.browser.conftest import Gateway, Open
from tests.browser.test_browser_pages import _axe  # the one axe helper (its path may move)

pytestmark = pytest.mark.browser

HEPING = "QX-DFJD-HPSQ"
TITLE = "信访工作条例专题培训"


async def test_a_kiosk_watches_a_training_raises_its_hand_and_speaks(
    gateway: Gateway, open_page: Open
) -> None:
    community = gateway.store.tree.get(gateway.seed.units[HEPING])
    assert community is not None
    kiosk = await open_page(f"/kiosk#token={gateway.seed.terminals[HEPING]}")
    await kiosk.locator("#v-idle").wait_for(state="visible")
    assert await kiosk.locator("#trainings").is_hidden()

    trainer = await start_session(open_page, "/training", "trainer", TITLE)
    trainer_pid = await trainer.evaluate("window.__pg.client.me")

    # the idle terminal shows the live training with a big 观看 button (it looks every 5 s)
    card = kiosk.locator("#trainings")
    await card.get_by_text(TITLE).wait_for(state="visible", timeout=15_000 * T)
    watch = card.get_by_role("button", name=f"观看 {TITLE}")
    box = await watch.bounding_box()
    assert box is not None
    assert box["height"] >= 60, box  # a big touch target
    assert await _axe(kiosk, "kiosk-training-on-air") == []
    await watch.click()
    await kiosk.locator("#v-training").wait_for(state="visible")
    assert await kiosk.locator("#t-title").text_content() == TITLE
    await frames_rising(kiosk, publisher=trainer_pid)
    await trainer.locator('#attendance[data-total="1"]').wait_for()

    # the terminal raises its hand; the trainer sees the community's name and lets it speak
    await kiosk.get_by_role("button", name="举手").click()
    await kiosk.locator("#t-status").get_by_text("已举手").wait_for()
    assert await kiosk.locator("#t-raise").get_attribute("aria-pressed") == "true"
    hands = trainer.locator("#hands")
    await hands.get_by_text(community.name).wait_for(timeout=10_000 * T)
    await trainer.get_by_role("button", name=f"请其发言 {community.name}").click()
    kiosk_pid = await kiosk.evaluate("window.__pg.training.me")
    await frames_rising(trainer, publisher=kiosk_pid, within=30)
    await kiosk.locator("#t-status").get_by_text("您正在发言").wait_for()
    assert await _axe(kiosk, "kiosk-training-speaking") == []
    await screenshot(trainer, "training-kiosk-speaks")

    # an official of the sub-district picks it from the list; no id is typed anywhere
    official = await open_page("/training", login="dongfeng")
    assert await official.locator("#sid").count() == 0
    item = official.locator("#open-list li").filter(has_text=TITLE)
    await item.get_by_text("直播中").wait_for()
    await item.get_by_role("button", name=f"加入 {TITLE}").click()
    await official.locator("#v-room").wait_for(state="visible")
    await frames_rising(official, publisher=trainer_pid)
    await trainer.locator('#attendance[data-total="2"]').wait_for()

    # a reload (a power blip) keeps the terminal in the training
    await kiosk.reload()
    await kiosk.locator("#v-training").wait_for(state="visible")
    await frames_rising(kiosk, publisher=trainer_pid, within=30)

    # the terminal stops watching and is back on its idle screen
    await kiosk.get_by_role("button", name="退出观看").click()
    await kiosk.locator("#v-idle").wait_for(state="visible")


async def test_an_invited_viewer_is_known_by_name_and_can_ask(
    gateway: Gateway, open_page: Open
) -> None:
    trainer = await start_session(open_page, "/training", "trainer", TITLE)
    await trainer.locator("#inv-name").fill("滨河社区 王五")
    await trainer.get_by_role("button", name="生成邀请链接").click()
    link = await invite_link(trainer)
    viewer = await open_page(link.replace(gateway.url, ""))
    await viewer.locator("#v-call").wait_for(state="visible")

    # the raised hand carries the invite's name, not 学员
    await viewer.get_by_role("button", name="举手").click()
    await trainer.locator("#hands").get_by_text("滨河社区 王五").wait_for(timeout=10_000 * T)
    # and the invited viewer has the question box
    await viewer.locator("#q-text").fill("请问复查申请的期限是多少天？")
    await viewer.get_by_role("button", name="发送").click()
    await trainer.locator("#questions").get_by_text("请问复查申请的期限是多少天？").wait_for()
    assert "滨河社区 王五" in (await trainer.locator("#questions").text_content() or "")
