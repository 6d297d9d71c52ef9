"""/dashboard: the chosen year's figures as /api/stats gives them, in the page's language;
the printable report opens in a new tab without raw keys."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from records import models, sessions
from records.enums import SessionKind, SessionState
from tests.browser.browser_kit import screenshot
from tests.browser.conftest import Gateway, Open
from web import keys

pytestmark = pytest.mark.browser

HOUSING_BUREAU = "QX-ZJJ"
BUREAU = "QX-XFJ"
#: an identifier leaking into the page (completion, timely_acceptance, received, housing, …)
RAW_KEY = re.compile(r"\b[a-z_]{6,}\b")


async def _post(page: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    me = await page.context.request.get("/api/me")
    csrf = (await me.json())["csrf_token"]
    resp = await page.context.request.post(path, data=body, headers={"X-CSRF-Token": csrf})
    assert resp.ok, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


async def _held(gateway: Gateway, kind: SessionKind, started: dt.datetime | None = None) -> None:
    """A session of ``kind`` that went live (``started``: back-dated)."""
    async with gateway.store.transaction() as tx:
        s = await sessions.create_session(tx, kind=kind, unit_id=gateway.seed.units[BUREAU])
        await sessions.set_state(tx, s.id, SessionState.LIVE)
        if started is not None:
            row = await tx.get(models.Session, s.id)
            assert row is not None
            row.started_at = started


async def _figures(page: Any, box: str) -> dict[str, str]:
    found: dict[str, str] = await page.eval_on_selector_all(
        f"{box} tr[data-key]",
        "rows => Object.fromEntries(rows.map(r => [r.dataset.key, r.cells[0].textContent]))",
    )
    return found


async def test_dashboard_figures_are_the_chosen_years_in_words(
    gateway: Gateway, open_page: Open
) -> None:
    year = dt.datetime.now(dt.UTC).year
    for kind in (SessionKind.CONFERENCE, SessionKind.CONFERENCE, SessionKind.TRAINING):
        await _held(gateway, kind)
    await _held(gateway, SessionKind.VISIT, dt.datetime(year - 1, 6, 1, 3, tzinfo=dt.UTC))

    # an item accepted and answered on time, but not concluded: 已办结 0
    reception = await open_page("/console", login="reception")
    housing = await open_page("/console", login="housing")
    item = (
        await _post(
            reception,
            "/api/items",
            {
                "type": "complaint",
                "channel": "video",
                "category": "housing",
                "request": "采光",
                "petitioners": [{"name": "张三"}],
            },
        )
    )["item"]
    await _post(
        reception,
        f"/api/items/{item['id']}/transfer",
        {"to_unit_id": gateway.seed.units[HOUSING_BUREAU]},
    )
    for action, body in (
        ("acknowledge", {}),
        ("accept", {}),
        ("opinion", {"decision": "支持", "legal_basis": "《信访工作条例》第三十二条"}),
    ):
        await _post(housing, f"/api/items/{item['id']}/{action}", body)

    page = await open_page("/dashboard", login="leader")
    await page.locator(f"#main[data-year='{year}']").wait_for(state="attached")
    stats = await (await page.context.request.get(f"/api/stats?year={year}")).json()
    assert stats["concluded"] == 0
    assert stats["rates"]["on_time_completion"]["percent"] == 100.0  # the server's ratio

    for key in ("received", "concluded", "in_progress"):
        shown = await page.locator(f"[data-figure={key}] strong").text_content()
        assert shown == str(stats[key]), key
    rates = await page.eval_on_selector_all(
        "#rates tr[data-key]",
        "rows => Object.fromEntries(rows.map(r => [r.dataset.key,"
        " [r.cells[0].textContent, r.cells[1].textContent]]))",
    )
    assert rates["on_time_completion"] == ["按期办结率", "—"]
    assert rates["completion"] == ["办结率", "0.0%"]
    assert rates["timely_acceptance"][0] == "按期受理率"
    kinds = await _figures(page, "#kinds")
    assert kinds == {"conference": "视频会议/会商", "training": "视频培训"}
    counts = await page.eval_on_selector_all(
        "#kinds tr[data-key]",
        "rows => rows.map(r => [r.dataset.key, Number(r.cells[1].textContent)])",
    )
    assert dict(counts) == stats["sessions"]["by_kind"]
    # no label runs into its bar: every label ends left of where its row's figure starts
    overlaps = await page.evaluate(
        """() => [...document.querySelectorAll('#rates g, #kinds g, #by-channel g')].filter((g) => {
          const [label, bar] = g.querySelectorAll('text, rect');
          const l = label.getBBox(), b = bar.getBBox();
          return l.y + l.height > b.y + 0.5;
        }).map((g) => g.dataset.key)"""
    )
    assert overlaps == []
    main = await page.locator("main").inner_text()
    assert not RAW_KEY.findall(main), RAW_KEY.findall(main)
    await screenshot(page, "dashboard-year")

    # last year: only the back-dated visit
    await page.locator("#year").fill(str(year - 1))
    await page.get_by_role("button", name="搜索", exact=True).click()
    await page.locator(f"#main[data-year='{year - 1}']").wait_for(state="attached")
    assert await _figures(page, "#kinds") == {"visit": "视频信访"}

    # the printable report: a new tab, words only
    await page.locator("#year").fill(str(year))
    await page.get_by_role("button", name="搜索", exact=True).click()
    await page.locator(f"#main[data-year='{year}']").wait_for(state="attached")
    async with page.context.expect_page() as opened:
        await page.locator("#report").click()
    report = await opened.value
    await report.locator("#doc h1").wait_for()
    assert page.url.endswith("/dashboard")
    text = await report.locator("main").inner_text()
    assert f"{year}年度信访工作统计报告" in text
    assert not RAW_KEY.findall(text), RAW_KEY.findall(text)
    assert "房屋与拆迁" in text
    assert "视频会议/会商" in text
    await screenshot(report, "report-zh")


async def test_dashboard_warns_while_next_years_holiday_notice_is_missing(
    gateway: Gateway, open_page: Open
) -> None:
    calendar = gateway.app[keys.CALENDAR]
    today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date()  # China Standard Time
    missing = calendar.missing_notice(today)
    page = await open_page("/dashboard", login="leader")
    await page.locator(f"#main[data-year='{today.year}']").wait_for(state="attached")
    warning = page.locator("#calendar-warning")
    if missing is None:  # every notice due by today is in: nothing to say
        assert await warning.is_hidden()
        return
    # shipped notices end with 2026: from 1 November 2026 the 2027 notice is due
    assert await warning.is_visible()
    text = await warning.text_content() or ""
    assert text.startswith(f"{missing}年部分节假日安排的通知尚未导入"), text
    assert "暂定" in text
    assert not RAW_KEY.findall(text), text
    await page.locator("#lang").click()
    await page.locator(f"#main[data-year='{today.year}']").wait_for(state="attached")
    await warning.get_by_text(f"The official holiday notice for {missing} is not loaded").wait_for()


async def test_a_dashboard_figure_opens_the_records_it_counts(
    gateway: Gateway, open_page: Open
) -> None:
    year = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).year
    reception = await open_page("/console", login="reception")
    item = (
        await _post(
            reception,
            "/api/items",
            {
                "type": "complaint",
                "channel": "visit",
                "category": "housing",
                "request": "采光",
                "petitioners": [{"name": "张三"}],
            },
        )
    )["item"]
    page = await open_page("/dashboard", login="leader")
    await page.locator(f"#main[data-year='{year}']").wait_for(state="attached")
    await page.locator("[data-figure=received] a").click()
    await page.wait_for_url(re.compile(r"/items\?figure=received&start="))
    row = page.locator(f'#rows tr[data-item="{item["id"]}"]')
    await row.wait_for()
    assert await row.locator("a").text_content() == item["lookup_code"]
    assert await row.locator("[data-state]").text_content() == "已登记"
    figure = await page.locator("#figure").text_content() or ""
    assert figure.startswith("报表数字所统计的事项：共1件"), figure
