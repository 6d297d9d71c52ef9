"""Identity numbers sealed at rest, masked, revealed, re-sealed on rotation; staff ratings."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.errors import ConfigError, Conflict, ValidationError
from records import items as svc
from records.calendar import HolidayCalendar
from records.item_models import Petitioner
from records.keyring import DataKeyring, SealError, key_id_of, mask_id_number, mask_phone
from records.keyring import new_key_entry as entry
from records.lifecycle import EventType
from tests.records.lifecycle_support import KEYRING, at, new_item, walk

ID = "110101195001011234"
E = EventType
ACCEPTED = [
    (E.ASSIGN, at(2024, 3, 2), {}),
    (E.RECEIVE, at(2024, 3, 4), {}),
    (E.ACCEPT, at(2024, 3, 5), {}),
]


async def _stored(s: AsyncSession, item_id: str) -> Petitioner:
    row = await s.scalar(select(Petitioner).where(Petitioner.item_id == item_id))
    assert row is not None
    return row


async def test_the_number_is_sealed_masked_and_revealed_whole(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with sessions() as s:
        item = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        await s.commit()
        stored = await _stored(s, item.id)
        assert stored.id_number is not None
        assert ID not in stored.id_number
        assert "1234" not in stored.id_number.split(".", 2)[1]  # the key id names no digits
        assert key_id_of(stored.id_number) == "test"
        assert stored.id_number_masked == "110***********1234"
        # what the layers above get carries the masked form only
        assert item.petitioners[0].id_number_masked == "110***********1234"
        assert ID not in repr(item)
        assert await svc.reveal_petitioner(s, KEYRING, item.id, 0, "id_number") == ID
        assert await svc.reveal_petitioner(s, KEYRING, item.id, 0, "phone") == "13800001234"
        other_key = DataKeyring.parse(entry("test"))  # same id, another key
        with pytest.raises(SealError, match="does not open"):
            await svc.reveal_petitioner(s, other_key, item.id, 0, "id_number")
        # a hub started with a key of its own is refused at start
        await svc.check_keyring(s, KEYRING)
        with pytest.raises(ConfigError, match="every hub needs the same data.key"):
            await svc.check_keyring(s, other_key)
        with pytest.raises(ConfigError, match="'test', not in the keyring"):
            await svc.check_keyring(s, DataKeyring.parse(entry("k9")))


async def test_a_sealed_number_copied_to_another_item_does_not_open(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with sessions() as s:
        a = await svc.register_item(s, calendar, new_item(), keyring=KEYRING, account_id=5)
        b = await svc.register_item(
            s,
            calendar,
            new_item(petitioners=[svc.NewPetitioner(name="李四", id_number="11010119600101002X")]),
            keyring=KEYRING,
            account_id=5,
        )
        sealed_a = (await _stored(s, a.id)).id_number
        await s.execute(
            update(Petitioner).where(Petitioner.item_id == b.id).values(id_number=sealed_a)
        )
        with pytest.raises(SealError):
            await svc.reveal_petitioner(s, KEYRING, b.id, 0, "id_number")


async def test_duplicates_are_found_by_the_keyed_digest(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with sessions() as s:
        a = await svc.register_item(s, calendar, new_item(), keyring=KEYRING, account_id=5)
        found = await svc.find_possible_duplicates(
            s, keyring=KEYRING, id_number="110101 195001 011234"
        )
        assert [d.item_id for d in found] == [a.id]
        assert found[0].reasons == ("same identity number",)
        with pytest.raises(ValueError, match="keyring"):
            await svc.find_possible_duplicates(s, id_number=ID)


async def test_rotation_reseals_everything_and_seals_numbers_stored_in_clear(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with sessions() as s:
        sealed = await svc.register_item(s, calendar, new_item(), keyring=KEYRING, account_id=5)
        legacy = await svc.register_item(
            s,
            calendar,
            new_item(petitioners=[svc.NewPetitioner(name="王五")]),
            keyring=KEYRING,
            account_id=5,
        )
        # a row from before migration 0011: the number in clear, no digest
        await s.execute(
            update(Petitioner)
            .where(Petitioner.item_id == legacy.id)
            .values(id_number="110101196001011111", id_number_masked="110***********1111")
        )
        await s.commit()
        assert await svc.reveal_petitioner(s, KEYRING, legacy.id, 0, "id_number") == (
            "110101196001011111"
        )
        new_ring = DataKeyring(DataKeyring.parse(entry("k2")).keys + KEYRING.keys)
        result = await svc.rotate_data_key(s, new_ring)
        await s.commit()
        assert (result.sealed, result.resealed) == (1, 1)
        assert result.key_ids_in_use == ("k2",)
        assert await svc.data_key_ids_in_use(s) == {"k2"}
        # the new key alone opens everything now; the old one opens nothing
        only_new = DataKeyring(new_ring.keys[:1])
        assert await svc.reveal_petitioner(s, only_new, sealed.id, 0, "id_number") == ID
        assert await svc.reveal_petitioner(s, only_new, legacy.id, 0, "id_number") == (
            "110101196001011111"
        )
        with pytest.raises(SealError, match="'k2', not in the keyring"):
            await svc.reveal_petitioner(s, KEYRING, sealed.id, 0, "id_number")
        # digests follow the new key: both are found again
        found = await svc.find_possible_duplicates(
            s, keyring=only_new, id_number="110101196001011111"
        )
        assert [d.item_id for d in found] == [legacy.id]
        again = await svc.rotate_data_key(s, new_ring)
        assert (again.sealed, again.resealed) == (0, 0)


async def test_staff_record_a_rating_only_for_a_petitioner_without_a_phone(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    no_phone = [svc.NewPetitioner(name="赵六", address="和平路2号")]
    async with sessions() as s:
        with_phone = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        await walk(s, calendar, with_phone.id, ACCEPTED)
        with pytest.raises(ValidationError, match="has a phone"):
            await svc.record_evaluation(
                s,
                calendar,
                with_phone.id,
                account_id=6,
                stage="acceptance",
                satisfied=True,
                note="来信表示满意",
            )
        item = await svc.register_item(
            s,
            calendar,
            new_item(petitioners=no_phone),
            keyring=KEYRING,
            account_id=5,
            at=at(2024, 3, 1),
        )
        await walk(s, calendar, item.id, ACCEPTED)
        with pytest.raises(ValidationError, match="note"):
            await svc.record_evaluation(
                s, calendar, item.id, account_id=6, stage="acceptance", satisfied=True, note=" "
            )
        with pytest.raises(ValidationError, match="before the opinion"):
            await svc.record_evaluation(
                s, calendar, item.id, account_id=6, stage="handling", satisfied=True, note="来信"
            )
        rated = await svc.record_evaluation(
            s,
            calendar,
            item.id,
            account_id=6,
            stage="acceptance",
            satisfied=False,
            note="来信表示不满意",
            at=at(2024, 3, 10),
        )
        assert (rated.eval_acceptance, rated.eval_acceptance_by) == (False, 6)
        assert rated.eval_handling_by is None
        last = (await svc.item_history(s, item.id))[-1]
        assert last.type is E.EVALUATE
        assert last.account_id == 6
        assert last.reason == "来信表示不满意"
        assert last.data == {"stage": "acceptance", "satisfied": False, "recorded_by_staff": True}
        with pytest.raises(Conflict):
            await svc.record_evaluation(
                s, calendar, item.id, account_id=6, stage="acceptance", satisfied=True, note="x"
            )


def test_masks_and_keyring_errors() -> None:
    assert mask_id_number("11010119500101123x") == "110***********123X"
    assert mask_id_number(None) is None
    assert mask_phone("13800001234") == "138****1234"
    assert mask_phone("88001234") == "******34"
    ring = DataKeyring.parse(entry("a") + "\n" + entry("b"))
    assert ring.sealing_key_id == "a"
    assert DataKeyring.parse(ring.text()) == ring
    for bad, why in (
        ("", "empty"),
        ("k1", "expected <id>:<base64 key>"),
        ("k1:AAAA", "has 3 bytes"),
        (entry("a") + "," + entry("a"), "given twice"),
    ):
        with pytest.raises(ConfigError, match=why):
            DataKeyring.parse(bad)
