"""``petition-gateway data-key rotate|retire``: every identity number re-sealed, audited."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
from sqlalchemy import update

from records import accounts
from records import items as svc
from records.calendar import load_calendar
from records.item_models import Channel, ItemType, Petitioner
from records.keyring import DataKeyring, key_id_of
from records.store import Store

ID = "110101195001011234"
LEGACY = "110101196001011111"


def _ring(tmp_path: Path) -> DataKeyring:
    return DataKeyring.parse((tmp_path / "data.key").read_text())


def test_rotate_reseals_every_number_and_retire_drops_the_old_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.cli import main

    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    assert main(["data-key", "retire"]) == 0  # creates the key file and the database
    assert stat.S_IMODE((tmp_path / "data.key").stat().st_mode) == 0o600
    first = _ring(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"

    async def seed() -> tuple[str, str]:
        store = Store(url)
        await store.start(migrate=False)
        calendar = load_calendar()
        try:
            async with store.transaction() as tx:
                ids = []
                for number in (ID, None):
                    new = svc.NewItem(
                        registering_unit_id=1,
                        type=ItemType.COMPLAINT,
                        channel=Channel.LETTER,
                        request="要求解决供暖问题",
                        petitioners=[svc.NewPetitioner(name="张三", id_number=number)],
                    )
                    item = await svc.register_item(tx, calendar, new, keyring=first, account_id=1)
                    ids.append(item.id)
                # a number stored before migration 0011, in clear
                await tx.execute(
                    update(Petitioner).where(Petitioner.item_id == ids[1]).values(id_number=LEGACY)
                )
            return ids[0], ids[1]
        finally:
            await store.close()

    sealed_id, legacy_id = asyncio.run(seed())
    capsys.readouterr()
    assert main(["data-key", "rotate", "--by", "li"]) == 0
    out = capsys.readouterr().out
    assert "sealed from clear: 1, re-sealed: 1" in out
    ring = _ring(tmp_path)
    assert [k for k, _ in ring.keys][1:] == [first.sealing_key_id]  # old key kept to open

    async def check(ring: DataKeyring) -> list[accounts.AuditRecord]:
        store = Store(url)
        await store.start(migrate=False)
        try:
            async with store.transaction() as tx:
                assert await svc.data_key_ids_in_use(tx) == {ring.sealing_key_id}
                only_new = DataKeyring(ring.keys[:1])
                assert await svc.reveal_petitioner(tx, only_new, sealed_id, 0, "id_number") == ID
                assert (
                    await svc.reveal_petitioner(tx, only_new, legacy_id, 0, "id_number") == LEGACY
                )
                item = await svc.get_item(tx, legacy_id)
                assert item.petitioners[0].id_number_masked == "110***********1111"
                return list(await accounts.audit_entries(tx))
        finally:
            await store.close()

    log = asyncio.run(check(ring))
    (entry,) = [e for e in log if e.action == "data_key_rotate"]
    assert entry.actor == "cli:li"
    assert entry.object_id == ring.sealing_key_id
    assert (entry.detail["sealed"], entry.detail["resealed"]) == (1, 1)
    assert entry.detail["previous"] == [first.sealing_key_id]

    assert main(["data-key", "retire", "--by", "li"]) == 0
    assert f"retired keys: {first.sealing_key_id}" in capsys.readouterr().out
    assert _ring(tmp_path).keys == ring.keys[:1]
    assert key_id_of(ring.seal(ID, item_id="x")) == ring.sealing_key_id


def test_a_configured_key_is_not_rewritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.cli import main

    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GATEWAY_SECURITY_DATA_KEY", "k1:" + "A" * 43 + "=")
    assert main(["data-key", "rotate"]) == 2
    assert "security.data_key is set in the configuration" in capsys.readouterr().err
    assert not (tmp_path / "data.key").exists()
