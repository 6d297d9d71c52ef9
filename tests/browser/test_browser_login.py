"""The sign-in page: where it goes afterwards and what it says when refused (issue 13, 7 and 8)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import Gateway, Open
from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser


async def _sign_in(page: Any, username: str, password: str) -> None:
    await page.locator("#username").fill(username)
    await page.locator("#password").fill(password)
    await page.locator("#submit").click()


@pytest.mark.parametrize(
    ("next_param", "lands_on"),
    [
        ("/%5Cevil.example", "/console"),  # /\evil.example: the browser reads //evil.example
        ("//evil.example", "/console"),
        ("/%09/evil.example", "/console"),  # the URL parser drops the tab: //evil.example
        ("http://evil.example/", "/console"),
        ("/library?kind=training", "/library?kind=training"),
    ],
)
async def test_after_sign_in_only_a_same_origin_path(
    gateway: Gateway, open_page: Open, next_param: str, lands_on: str
) -> None:
    page = await open_page(f"/login?next={next_param}")
    # never leave for another host, even if the check were wrong
    await page.context.route(re.compile(r"^https?://evil\.example.*"), lambda route: route.abort())
    await _sign_in(page, "reception", PASSWORD)
    await page.wait_for_url(f"{gateway.url}{lands_on}")


async def test_a_throttled_sign_in_says_so_in_the_page_language(
    gateway: Gateway, open_page: Open
) -> None:
    page = await open_page("/login")
    for _ in range(5):
        await _sign_in(page, "reception", "wrong password")
        await page.locator("#error", has_text="用户名或密码错误").wait_for()
        await page.locator("#error").evaluate("e => { e.textContent = '' }")
    await _sign_in(page, "reception", "wrong password")
    await page.locator("#error", has_text="登录失败次数过多").wait_for()
