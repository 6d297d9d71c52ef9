from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from records.enums import UnitLevel
from records.store import Store
from tests.helpers import EXAMPLE_ORGS


async def test_example_tree_has_the_four_levels(database_url: str) -> None:
    store = Store(database_url)
    await store.start(migrate=True)
    try:
        result = await store.import_org_file(EXAMPLE_ORGS)
        tree = store.tree
        levels = [u.level for u in tree.units.values()]
        assert result.created == len(levels)
        assert levels.count(UnitLevel.DISTRICT) == 1
        assert levels.count(UnitLevel.DEPARTMENT) >= 6  # bureau, reception centre and ≥ 4 more
        assert levels.count(UnitLevel.SUBDISTRICT) >= 3
        for sub in (u for u in tree.units.values() if u.level is UnitLevel.SUBDISTRICT):
            children = [u for u in tree.units.values() if u.parent_id == sub.id]
            assert len(children) >= 2
        heping = tree.by_code["QX-DFJD-HPSQ"]
        assert tree.reception_unit(heping.id) == tree.by_code["QX-XFJ-JDZX"]
        assert tree.sees_everything(tree.by_code["QX-XFJ-JDZX"].id)
        assert not tree.sees_everything(tree.by_code["QX-DFJD"].id)

        again = await store.import_org_file(EXAMPLE_ORGS)
        assert (again.created, again.updated, again.deactivated) == (0, 0, 0)
        assert again.unchanged == len(levels)
    finally:
        await store.close()


async def test_unit_left_out_of_the_file_is_deactivated_not_deleted(
    database_url: str, tmp_path: Path
) -> None:
    store = Store(database_url)
    await store.start(migrate=True)
    try:
        await store.import_org_file(EXAMPLE_ORGS)
        text = EXAMPLE_ORGS.read_text()
        cut = text.split('[[unit]]\ncode = "QX-QSZ-LTC"')[0]
        smaller = tmp_path / "smaller.toml"
        smaller.write_text(cut)
        result = await store.import_org_file(smaller)
        assert result.deactivated == 1
        unit = store.tree.by_code["QX-QSZ-LTC"]
        assert unit.active is False
    finally:
        await store.close()


BAD_FILES = {
    "cycle": (
        '[[unit]]\ncode="D"\nname="d"\nlevel="district"\n'
        '[[unit]]\ncode="A"\nname="a"\nlevel="department"\nparent="B"\n'
        '[[unit]]\ncode="B"\nname="b"\nlevel="department"\nparent="A"\n',
        "cycle",
    ),
    "unknown parent": (
        '[[unit]]\ncode="D"\nname="d"\nlevel="district"\n'
        '[[unit]]\ncode="S"\nname="s"\nlevel="subdistrict"\nparent="X"\n',
        "unknown parent 'X'",
    ),
    "duplicate": (
        '[[unit]]\ncode="D"\nname="d"\nlevel="district"\n[[unit]]\ncode="D"\nname="e"\nlevel="district"\n',
        "duplicate unit code 'D'",
    ),
    "level order": (
        '[[unit]]\ncode="D"\nname="d"\nlevel="district"\n'
        '[[unit]]\ncode="C"\nname="c"\nlevel="community"\nparent="D"\n',
        "wrong level order",
    ),
    "bad level": ('[[unit]]\ncode="D"\nname="d"\nlevel="province"\n', "unknown level 'province'"),
    "not toml": ("[[unit]\ncode=", "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
async def test_bad_org_file_is_refused_and_changes_nothing(
    case: str, sqlite_url: str, tmp_path: Path
) -> None:
    content, message = BAD_FILES[case]
    bad = tmp_path / "bad.toml"
    bad.write_text(content)
    store = Store(sqlite_url)
    await store.start(migrate=True)
    try:
        await store.import_org_file(EXAMPLE_ORGS)
        before = dict(store.tree.by_code)
        with pytest.raises(ConfigError, match=message):
            await store.import_org_file(bad)
        await store.reload_tree()
        assert dict(store.tree.by_code) == before
    finally:
        await store.close()


def test_cli_orgs_import_bad_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.cli import main

    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_FILES["cycle"][0])
    assert main(["orgs", "import", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "cycle" in err[0]
    assert main(["orgs", "import", str(EXAMPLE_ORGS)]) == 0
    assert "created" in capsys.readouterr().out
