"""Due dates in a year without an official holiday notice are marked provisional everywhere."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import PACKAGE_DIR
from records.base import utcnow
from records.deadlines import local_date
from tests.api.items_api_support import act, register
from tests.conftest import _api
from tests.helpers import Api, make_settings


def _holidays_dir(tmp_path: Path, *, with_current_year: bool) -> Path:
    """A holiday folder holding the shipped notices, without this year's when asked."""
    folder = tmp_path / "holidays"
    folder.mkdir()
    this_year = local_date(utcnow()).year
    for f in (PACKAGE_DIR / "holidays").glob("CN-*.toml"):
        if with_current_year or f.stem != f"CN-{this_year}":
            shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture(params=[True, False], ids=["notice", "no-notice"])
async def api_cal(
    request: pytest.FixtureRequest, aiohttp_client: Any, tmp_path: Path, sqlite_url: str
) -> AsyncIterator[tuple[Api, Path]]:
    """The app with this year's holiday notice loaded or missing; yields (api, its folder)."""
    folder = _holidays_dir(tmp_path, with_current_year=request.param)
    settings = make_settings(tmp_path, sqlite_url, deadlines={"holidays_dir": str(folder)})
    async for a in _api(aiohttp_client, settings):
        yield a, folder


async def test_due_dates_say_whether_they_are_provisional(api_cal: tuple[Api, Path]) -> None:
    api, folder = api_cal

    def provisional(day: str) -> bool:
        # a due date is provisional when its year's notice is not in the folder: in the
        # no-notice app, this year's routing deadline (15 days) is
        return not (folder / f"CN-{day[:4]}.toml").exists()

    reception = await api.login("reception")
    item = await register(api, reception, "QX-XFJ-JDZX")
    due = item["due"]
    expected = provisional(due["on"])
    assert due["provisional"] is expected

    listed = await api.client.get("/api/items", headers=reception)
    assert listed.status == 200
    [row] = [i for i in (await listed.json())["items"] if i["id"] == item["id"]]
    assert row["due"]["provisional"] is expected

    one = await api.client.get(f"/api/items/{item['id']}", headers=reception)
    assert (await one.json())["due"]["provisional"] is expected

    await act(api, reception, item["id"], "assign", to_unit_id=api.seed.units["QX-XFJ-JDZX"])
    due_list = await api.client.get("/api/items/due?within_days=366", headers=reception)
    [entry] = [d for d in (await due_list.json())["items"] if d["item_id"] == item["id"]]
    assert entry["due_provisional"] is provisional(entry["due_on"])

    progress = await api.client.get("/api/public/progress", params={"code": item["lookup_code"]})
    body = await progress.json()
    assert body["due_provisional"] is provisional(body["due_on"])
