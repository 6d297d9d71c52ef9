"""``Store.run`` groups the calls that arrive together into one transaction (SQLite).

A burst of joins is written in a few transactions instead of one each, and every join is
still written exactly as alone: a refused join writes nothing and gets its own error, the
joins beside it are written; everything is committed before its caller is answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from config.errors import AccessDenied, NotFound
from records import accounts, sessions
from records.enums import AdmissionState, ParticipantRole, PrincipalKind, Role, SessionKind
from records.principals import Principal
from records.store import Store
from tests.helpers import EXAMPLE_ORGS


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(f"sqlite+aiosqlite:///{tmp_path / 'batch.db'}")
    await s.start(migrate=True)
    await s.import_org_file(EXAMPLE_ORGS)
    try:
        yield s
    finally:
        await s.close()


def _viewer(i: int, unit: int) -> Principal:
    return Principal(PrincipalKind.TERMINAL, str(i), unit, f"终端{i}", frozenset())


async def test_a_burst_of_joins_is_written_in_few_transactions_each_as_alone(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    unit = store.tree.by_code["QX"].id
    async with store.transaction() as tx:
        trainer = await accounts.create_account(
            tx, "trainer", "培训师", "", unit, [Role.TRAINER], password_hash="x"
        )
        s = await sessions.create_session(
            tx, kind=SessionKind.TRAINING, unit_id=unit, convener_account_id=trainer.id
        )
    batches: list[int] = []
    run_batch = store._run_batch_sync  # noqa: SLF001  # a spy on the batch sizes

    def spy(calls: list[object]) -> list[tuple[bool, object]]:
        batches.append(len(calls))
        return run_batch(calls)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_run_batch_sync", spy)

    def decide(i: int):  # type: ignore[no-untyped-def]
        def d(_s: sessions.SessionInfo) -> sessions.JoinDecision:
            if i == 13:
                raise AccessDenied("terminal 13 may not join")
            return sessions.JoinDecision(ParticipantRole.VIEWER, AdmissionState.ADMITTED, False)

        return d

    n = 60
    outcomes = await asyncio.gather(
        *(
            store.run(
                sessions.join_session,
                s.id,
                _viewer(i, unit),
                decide(i),
                hidden=lambda _k: (ParticipantRole.VIEWER,),
                hub_id="hub-a",
            )
            for i in range(n)
        ),
        store.run(sessions.leave_session, s.id, "no-such-participant", "left"),
        return_exceptions=True,
    )
    *joins, missing = outcomes
    assert isinstance(missing, NotFound)
    assert isinstance(joins[13], AccessDenied)
    written = [v for i, v in enumerate(joins) if i != 13]
    assert all(isinstance(v, sessions.JoinView) and v.participant for v in written)
    # fewer transactions than calls: the calls that arrived together went together
    assert sum(batches) == n + 1, batches
    assert len(batches) < n / 2, batches

    async with store.transaction() as tx:
        rows = await sessions.session_participants(tx, s.id)
        events = await sessions.session_events(tx, s.id)
    assert sorted(p.principal_ref for p in rows) == sorted(
        f"terminal:{i}" for i in range(n) if i != 13
    )
    assert [e["event"] for e in events].count("joined") == n - 1
    assert {p.id for p in rows} == {v.participant.id for v in written}  # type: ignore[union-attr]


async def test_calls_made_before_close_are_committed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'close.db'}"
    store = Store(url)
    await store.start(migrate=True)
    await store.import_org_file(EXAMPLE_ORGS)
    unit = store.tree.by_code["QX"].id
    async with store.transaction() as tx:
        s = await sessions.create_session(tx, kind=SessionKind.CONFERENCE, unit_id=unit)
    admitted = sessions.JoinDecision(ParticipantRole.MEMBER, AdmissionState.ADMITTED, False)
    joins = [
        asyncio.ensure_future(
            store.run(
                sessions.join_session, s.id, _viewer(i, unit), lambda _s: admitted, hidden=tuple
            )
        )
        for i in range(10)
    ]
    await asyncio.sleep(0)  # the joins are queued
    await store.close()
    views = await asyncio.gather(*joins)
    assert all(v.participant is not None for v in views)

    again = Store(url)
    await again.start(migrate=False)
    try:
        async with again.transaction() as tx:
            rows = await sessions.session_participants(tx, s.id)
    finally:
        await again.close()
    assert len(rows) == 10
