"""Identity numbers and phones: revealed one at a time, and re-sealed when the key rotates.

Views only ever get the masked forms (:class:`~records.items.values.PetitionerInfo`); the web
layer audits every call of :func:`reveal_petitioner` with who, what and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import ConfigError, NotFound
from records.item_models import Petitioner
from records.items.core import flush, load_row
from records.keyring import (
    SEALED_PREFIX,
    DataKeyring,
    SealError,
    is_sealed,
    key_id_of,
    mask_id_number,
)

RevealField = Literal["id_number", "phone"]


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a key rotation did.

    Attributes:
        sealed: numbers stored in clear before (rows older than migration 0011), now sealed.
        resealed: numbers sealed with an older key, now sealed with the new one.
        key_ids_in_use: the key ids stored values name afterwards (only the new one).
    """

    sealed: int
    resealed: int
    key_ids_in_use: tuple[str, ...]


async def reveal_petitioner(
    session: AsyncSession,
    keyring: DataKeyring,
    item_id: str,
    position: int,
    field: RevealField,
) -> str | None:
    """The full identity number or phone of the item's petitioner at ``position``.

    The caller checks the reader may see the item and audits the reveal.

    Raises:
        NotFound: no such item or no petitioner at ``position``.
        SealError: the number does not open with ``keyring``.
    """
    await load_row(session, item_id)
    row = await session.scalar(
        select(Petitioner).where(Petitioner.item_id == item_id, Petitioner.position == position)
    )
    if row is None:
        raise NotFound(f"item {item_id!r} has no petitioner at position {position}")
    if field == "phone":
        return row.phone
    if row.id_number is None:
        return None
    if not is_sealed(row.id_number):  # stored before migration 0011 and not rotated yet
        return row.id_number
    return keyring.open(row.id_number, item_id=item_id)


async def rotate_data_key(session: AsyncSession, keyring: DataKeyring) -> Rotation:
    """Seal every stored identity number with ``keyring``'s sealing key, digests anew.

    ``keyring`` holds the new key first and the old keys after it, to open what they sealed.
    Numbers still in clear (from before migration 0011) are sealed too. Runs in the caller's
    transaction: either every number moves to the new key or none does.

    Raises:
        SealError: a stored number does not open with any key of ``keyring``.
    """
    sealed = resealed = 0
    rows = (
        await session.scalars(
            select(Petitioner).where(Petitioner.id_number.is_not(None)).order_by(Petitioner.id)
        )
    ).all()
    for row in rows:
        stored = row.id_number
        assert stored is not None
        if is_sealed(stored):
            if key_id_of(stored) == keyring.sealing_key_id:
                continue
            plain = keyring.open(stored, item_id=row.item_id)
            resealed += 1
        else:
            plain = stored
            sealed += 1
        row.id_number = keyring.seal(plain, item_id=row.item_id)
        row.id_number_digest = keyring.digest(plain)
        row.id_number_masked = mask_id_number(plain)
    await flush(session, "rotate the data key")
    in_use = await data_key_ids_in_use(session)
    return Rotation(sealed=sealed, resealed=resealed, key_ids_in_use=tuple(sorted(in_use)))


async def check_keyring(session: AsyncSession, keyring: DataKeyring) -> None:
    """Refuse a keyring that cannot open the newest sealed identity number.

    One row is read: enough to catch a hub that generated a key of its own instead of
    sharing the others' (it would seal numbers they cannot open), or a lost key file.

    Raises:
        ConfigError: the newest sealed number does not open, naming its key id.
    """
    row = (
        await session.execute(
            select(Petitioner.item_id, Petitioner.id_number)
            .where(Petitioner.id_number.like(SEALED_PREFIX + "%"))
            .order_by(Petitioner.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return
    item_id, sealed = row
    if sealed is None:  # pragma: no cover - the query selects sealed values
        return
    try:
        keyring.open(sealed, item_id=item_id)
    except SealError as exc:
        raise ConfigError(
            f"security.data_key: {exc}; every hub needs the same data.key (docs/security.md)"
        ) from exc


async def data_key_ids_in_use(session: AsyncSession) -> frozenset[str]:
    """The key ids stored identity numbers are sealed with (``(clear)`` for unsealed ones)."""
    values = await session.scalars(
        select(Petitioner.id_number).where(Petitioner.id_number.is_not(None))
    )
    return frozenset(key_id_of(v) or "(clear)" for v in values.all() if v is not None)
