"""A session's end closes every participant row, the lobby's too, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from records import recordings, sessions
from records.enums import AdmissionState, ParticipantRole, PrincipalKind, SessionKind, SessionState
from records.principals import Principal
from tests.helpers import Api


def _who(n: int, unit: int) -> Principal:
    return Principal(PrincipalKind.ACCOUNT, str(n), unit, f"person {n}")


async def _conference(api: Api) -> tuple[str, str, str]:
    unit = api.seed.units["QX-XFJ"]
    async with api.seed.store.transaction() as tx:
        s = await sessions.create_session(tx, kind=SessionKind.CONFERENCE, unit_id=unit)
        await sessions.set_state(tx, s.id, SessionState.LIVE)
        present = await sessions.add_participant(
            tx, s.id, _who(1, unit), ParticipantRole.CONVENER, AdmissionState.ADMITTED, joined=True
        )
        waiting = await sessions.add_participant(
            tx, s.id, _who(2, unit), ParticipantRole.OFFICIAL, AdmissionState.LOBBY, joined=False
        )
    return s.id, present.id, waiting.id


async def test_ending_a_session_closes_its_lobby(api: Api) -> None:
    session, present, waiting = await _conference(api)
    async with api.seed.store.transaction() as tx:
        ended = await sessions.set_state(tx, session, SessionState.ENDED, "done")
        rows = {p.id: p for p in (await sessions.get_session(tx, session)).participants}
    assert rows[present].left_at == ended.ended_at
    assert rows[waiting].left_at == ended.ended_at
    assert rows[waiting].joined_at is None
    assert rows[waiting].leave_reason == "lobby closed"


async def test_an_interrupted_session_closes_its_lobby_and_ends_with_its_media(api: Api) -> None:
    session, present, waiting = await _conference(api)
    async with api.seed.store.transaction() as tx:
        assert session in await sessions.mark_interrupted(tx)
        record = await sessions.get_session(tx, session)
    assert record.ended_at is not None
    later = record.ended_at + dt.timedelta(seconds=11)
    async with api.seed.store.transaction() as tx:
        assert await recordings.extend_interrupted(tx, session, later)
        # never backwards
        assert not await recordings.extend_interrupted(tx, session, record.ended_at)
        after = await sessions.get_session(tx, session)
    rows = {p.id: p for p in after.participants}
    assert after.ended_at == later
    assert rows[present].left_at == later  # present until the crash
    assert rows[waiting].left_at == record.ended_at  # the lobby's wait ended at the close
    assert rows[waiting].leave_reason == "lobby closed"


async def test_a_dead_hubs_lobby_rows_are_reaped(api: Api) -> None:
    unit = api.seed.units["QX-XFJ"]
    async with api.seed.store.transaction() as tx:
        s = await sessions.create_session(tx, kind=SessionKind.CONFERENCE, unit_id=unit)
        waiting = await sessions.add_participant(
            tx,
            s.id,
            _who(3, unit),
            ParticipantRole.OFFICIAL,
            AdmissionState.LOBBY,
            joined=False,
            hub_id="hub-dead",
        )
        orphans = await sessions.orphaned_participants(tx, ["hub-alive"])
    assert waiting.id in {p.id for p in orphans}
