"""``petition-gateway calendar import``: stored in the database, audited; /healthz warns."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from records import accounts
from records.notices import imported_notices
from records.store import Store
from tests.conftest import Api

NOTICE_2027 = Path(__file__).resolve().parents[1] / "records" / "notices" / "CN-2027.toml"


def test_cli_imports_a_notice_audited_and_refuses_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.cli import main

    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    bad = tmp_path / "CN-2027.toml"
    bad.write_text(NOTICE_2027.read_text("utf-8").replace("year = 2027", "year = 2028"))
    assert main(["calendar", "import", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "key 'year' must be 2027" in err[0]

    assert main(["calendar", "import", str(NOTICE_2027), "--by", "zhang"]) == 0
    out = capsys.readouterr().out
    assert "holiday notice for 2027 imported" in out
    assert "open deadlines moved: 0" in out

    async def check() -> None:
        store = Store(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
        await store.start(migrate=False)
        try:
            async with store.transaction() as tx:
                notices = await imported_notices(tx)
                entries = await accounts.audit_entries(tx)
        finally:
            await store.close()
        assert [n.year for n in notices] == [2027]
        (entry,) = [e for e in entries if e.action == "calendar_import"]
        assert entry.actor == "cli:zhang"
        assert entry.detail["year"] == 2027
        assert len(entry.detail["sha256"]) == 64

    asyncio.run(check())


async def test_health_warns_when_a_notice_is_missing_but_stays_up(api_sqlite: Api) -> None:
    resp = await api_sqlite.client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok"
    # config/holidays ships 2020-2026: from 1 November 2026 on, 2027's notice is missing
    assert body["calendar"].startswith("warning: no official holiday notice for 20")
    assert "calendar import" in body["calendar"]
    # the year as a number, which the dashboard words in the page's language
    assert body["calendar"].startswith(
        f"warning: no official holiday notice for {body['calendar_notice_missing']};"
    )


def test_cli_freezes_a_year_and_checks_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.cli import main

    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    assert main(["reports", "freeze", "--year", "2021", "--by", "li"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("report 1 for 2021 as of 2022-01-01T00:00:00+08:00: received 0")
    assert main(["reports", "check", "1"]) == 0
    out = capsys.readouterr().out
    assert "stored text matches its hash: yes" in out
    assert "recomputed figures identical: yes" in out
    assert main(["reports", "check", "2"]) == 2
    assert "no frozen report 2" in capsys.readouterr().err
