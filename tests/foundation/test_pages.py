"""The static edge serves the browser apps and nothing else: no test tools, no missing pages."""

from __future__ import annotations

import pytest

from tests.helpers import Api
from web.pages import PAGES, STATIC


def test_every_page_route_has_its_page() -> None:
    missing = [f"{path} -> {name}" for path, name in PAGES.items() if not (STATIC / name).is_file()]
    assert not missing, missing


def test_no_test_tool_ships_with_the_static_files() -> None:
    shipped = [p.relative_to(STATIC) for p in STATIC.rglob("*") if "axe" in p.name.lower()]
    assert not shipped, shipped


@pytest.mark.parametrize("path", ["/static/vendor/axe/axe.min.js", "/static/vendor/axe/LICENSE"])
async def test_not_served(api_sqlite: Api, path: str) -> None:
    admin = await api_sqlite.login("bureau_admin")
    resp = await api_sqlite.client.get(path, headers=admin, allow_redirects=False)
    assert resp.status == 404
