"""Search for earlier items that may be the same petition (重复信访)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from records.base import utcnow
from records.item_models import (
    ItemRow,
    Petitioner,
)
from records.items.values import (
    DuplicateCandidate,
)
from records.keyring import DataKeyring
from records.lifecycle import (
    ItemState,
)


def _bigrams(text: str) -> set[str]:
    compact = re.sub(r"\s+", "", text)
    return {compact[i : i + 2] for i in range(len(compact) - 1)} or (
        {compact} if compact else set()
    )


def _similarity(a: str, b: str) -> float:
    x, y = _bigrams(a), _bigrams(b)
    if not x or not y:
        return 0.0
    return len(x & y) / len(x | y)


async def find_possible_duplicates(
    session: AsyncSession,
    *,
    keyring: DataKeyring | None = None,
    id_number: str | None = None,
    name: str | None = None,
    phone: str | None = None,
    request_text: str | None = None,
    unit_ids: Sequence[int] | None = None,
    since: dt.datetime | None = None,
    min_similarity: float = 0.35,
    limit: int = 20,
) -> list[DuplicateCandidate]:
    """Earlier items that may be the same petition (repeat petitions, 重复信访).

    Candidates are items of the same petitioner (identity number, found by its keyed digest
    under ``keyring``, which an ``id_number`` needs, or name and phone), and,
    when ``request_text`` is given, items whose request is similar (character-bigram
    Jaccard ≥ ``min_similarity``) among those registered since ``since`` (default: one year)
    in ``unit_ids`` (default: all). Best score first.
    """
    person_ids: dict[str, list[str]] = {}
    conditions = []
    if id_number and keyring is None:
        raise ValueError("find_possible_duplicates: an id_number needs the keyring")
    digest = keyring.digest(id_number) if id_number and keyring is not None else None
    if digest:
        conditions.append(Petitioner.id_number_digest == digest)
    if name and phone:
        conditions.append(and_(Petitioner.name == name, Petitioner.phone == phone))
    if conditions:
        for item_id, pid in (
            await session.execute(
                select(Petitioner.item_id, Petitioner.id_number_digest).where(or_(*conditions))
            )
        ).all():
            why = "same identity number" if digest and pid == digest else "same name and phone"
            person_ids.setdefault(item_id, []).append(why)
    text_rows: list[tuple[str, str]] = []
    if request_text:
        start = since or (utcnow() - dt.timedelta(days=365))
        q = select(ItemRow.id, ItemRow.request).where(ItemRow.registered_at >= start)
        if unit_ids is not None:
            q = q.where(ItemRow.registering_unit_id.in_(list(unit_ids)))
        # Bounded: a text-only search looks at the most recent 5,000 items.
        q = q.order_by(ItemRow.registered_at.desc()).limit(5000)
        text_rows = [(i, r) for i, r in (await session.execute(q)).all()]
    scores: dict[str, tuple[float, list[str]]] = {}
    for item_id, reasons in person_ids.items():
        scores[item_id] = (1.0, sorted(set(reasons)))
    for item_id, req in text_rows:
        sim = _similarity(request_text or "", req)
        if sim >= min_similarity:
            base, reasons = scores.get(item_id, (0.0, []))
            scores[item_id] = (base + sim, [*reasons, f"similar request ({sim:.0%})"])
    if person_ids and request_text:
        for item_id in person_ids:
            if not any(r.startswith("similar") for r in scores[item_id][1]):
                own = await session.scalar(select(ItemRow.request).where(ItemRow.id == item_id))
                sim = _similarity(request_text, own or "")
                base, reasons = scores[item_id]
                scores[item_id] = (base + sim, [*reasons, f"similar request ({sim:.0%})"])
    if not scores:
        return []
    rows = {
        r.id: r
        for r in (await session.scalars(select(ItemRow).where(ItemRow.id.in_(list(scores))))).all()
    }
    found = [
        DuplicateCandidate(
            item_id=i,
            lookup_code=rows[i].lookup_code,
            state=ItemState(rows[i].state),
            registered_at=rows[i].registered_at,
            score=round(score, 3),
            reasons=tuple(reasons),
        )
        for i, (score, reasons) in scores.items()
        if i in rows
    ]
    found.sort(key=lambda c: (-c.score, c.registered_at))
    return found[:limit]
