"""Mediation with lobby admit and refuse; training with a trainer, three viewers and a speaker."""

from __future__ import annotations

import re
from typing import Any

import pytest

from records import sessions
from tests.browser.browser_kit import (
    audio_heard,
    frames_rising,
    screenshot,
    start_session,
    wait_for,
)
from tests.browser.conftest import Gateway, Open

pytestmark = pytest.mark.browser


async def _invite(page: Any, role: str | None, name: str) -> str:
    if role is not None:
        await page.locator("#inv-role").select_option(role)
    if await page.locator("#inv-name").count():
        await page.locator("#inv-name").fill(name)
    # a room's invite is a form; the training page's is one button beside the name
    submit = page.locator("#invite button[type=submit]")
    await (submit if await submit.count() else page.locator("#invite")).click()
    await wait_for("invite link", lambda: _link_ready(page))
    link: str = await page.locator("#inv-link").input_value()
    await page.locator("#inv-link").evaluate("el => (el.value = '')")
    return link


async def _link_ready(page: Any) -> bool:
    value: str = await page.locator("#inv-link").input_value()
    return value.startswith("http")


def _path(gateway: Gateway, link: str) -> str:
    return link.replace(gateway.url, "")


async def test_mediation_lobby_admit_and_refuse(gateway: Gateway, open_page: Open) -> None:
    mediator = await start_session(open_page, "/room", "mediator", "邻里纠纷调解")
    session_id = await mediator.evaluate("window.__pg.client.session")
    link_a = await _invite(mediator, "party", "当事人甲")
    link_b = await _invite(mediator, "party", "当事人乙")

    party_a = await open_page(_path(gateway, link_a))
    await party_a.locator("#v-lobby").wait_for(state="visible")
    party_b = await open_page(_path(gateway, link_b))
    await party_b.locator("#v-lobby").wait_for(state="visible")
    await mediator.locator("#lobby li").nth(1).wait_for()
    await screenshot(mediator, "room-lobby")

    await mediator.get_by_role("button", name="准入 当事人甲").click()
    await party_a.locator("#v-call").wait_for(state="visible")
    await mediator.get_by_role("button", name="拒绝 当事人乙").click()
    await party_b.get_by_role("heading", name="主持人拒绝了您的入会请求").wait_for()

    await mediator.locator("#people").get_by_text("当事人甲").wait_for()
    # the admitted party and the mediator see each other
    mediator_pid = await mediator.evaluate("window.__pg.client.me")
    party_pid = await party_a.evaluate("window.__pg.client.me")
    await frames_rising(mediator, publisher=party_pid, within=30)
    await frames_rising(party_a, publisher=mediator_pid, within=30)
    # Chromium's fake microphone beeps: the mediator's page shows the party speaking, from the
    # levels the worker reads off the party's audio packets
    talking = mediator.locator(f'#grid figure.speaking[data-participant="{party_pid}"]')
    await talking.wait_for(timeout=15_000)
    await talking.get_by_text("正在讲话").wait_for(timeout=2_000)
    await screenshot(mediator, "room-call")

    await mediator.locator("#outcome").select_option("agreement")
    await mediator.get_by_role("button", name="结束", exact=True).click()
    await party_a.locator("#v-gone").wait_for(state="visible")
    async with gateway.store.transaction() as tx:
        s = await sessions.get_session(tx, session_id)
    assert s.outcome == "agreement"
    admissions = {p.display_name: p.admission.value for p in s.participants}
    assert admissions["当事人甲"] == "admitted"
    assert admissions["当事人乙"] == "refused"


async def test_training_three_viewers_and_a_speaker(gateway: Gateway, open_page: Open) -> None:
    trainer = await start_session(open_page, "/training", "trainer", "信访条例培训")
    trainer_pid = await trainer.evaluate("window.__pg.client.me")
    viewers = []
    for _ in range(3):
        link = await _invite(trainer, None, "")
        viewers.append(await open_page(_path(gateway, link)))
    for v in viewers:
        await v.locator("#v-call").wait_for(state="visible")
    for v in viewers:
        await frames_rising(v, publisher=trainer_pid, within=30)
    await wait_for("attendance 3", lambda: _attendance(trainer, 3))

    speaker = viewers[0]
    speaker_pid = await speaker.evaluate("window.__pg.client.me")
    await speaker.get_by_role("button", name="举手").click()
    await trainer.locator(f'#hands li[data-participant="{speaker_pid}"] button.promote').click()
    await speaker.get_by_role("button", name=re.compile("举手|放下手")).wait_for(state="hidden")

    for other in (trainer, viewers[1], viewers[2]):
        await audio_heard(other, speaker_pid, within=30)
    await screenshot(trainer, "training-trainer")
    await screenshot(viewers[1], "training-viewer")


async def _attendance(page: Any, n: int) -> bool:
    total = await page.locator("#attendance").get_attribute("data-total")
    return bool(total == str(n))
