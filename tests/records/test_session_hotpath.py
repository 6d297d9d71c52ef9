"""The hub's Core hot paths agree with the ORM functions they replace, on the same data.

``records.sessions.hotpath`` keeps SQLAlchemy Core copies of ORM reads and writes for the
hub's hello, join and leave. Each test here builds one database, runs the Core copy, and
checks its answer (and the rows it wrote) against what the ORM functions read or write on the
same rows: a change to one side that is not made to the other fails here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Iterable

import pytest

from records import accounts, sessions
from records.base import utcnow
from records.enums import (
    AdmissionState,
    ParticipantRole,
    PrincipalKind,
    Role,
    SessionKind,
    SessionState,
)
from records.principals import Principal
from records.store import Store
from tests.helpers import EXAMPLE_ORGS


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = Store(database_url)
    await s.start(migrate=True)
    await s.import_org_file(EXAMPLE_ORGS)
    unit = s.tree.by_code["QX-DFJD"].id
    async with s.transaction() as tx:  # accounts 1 to 5, the officials of the tests
        for i in range(1, 6):
            a = await accounts.create_account(
                tx, f"official{i}", f"干部{i}", "", unit, [Role.RECEPTION], password_hash="x"
            )
            assert a.id == i
    try:
        yield s
    finally:
        await s.close()


def _hidden(kind: SessionKind) -> Iterable[ParticipantRole]:
    return (ParticipantRole.VIEWER,) if kind is SessionKind.TRAINING else ()


def _official(i: int, unit_id: int) -> Principal:
    return Principal(
        PrincipalKind.ACCOUNT, str(i), unit_id, f"干部{i}", frozenset({Role.RECEPTION})
    )


def _events(events: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(e["actor"], e["event"], e["participant"], e["data"]) for e in events]


async def test_terminal_hello_agrees_with_resolve_terminal_announcements_and_open_visit(
    store: Store,
) -> None:
    tree = store.tree
    community = tree.by_code["QX-DFJD-HPSQ"]
    street = tree.by_code["QX-DFJD"]
    other = tree.by_code["QX-QSZ-LTC"]
    later = utcnow() + dt.timedelta(days=3)
    async with store.transaction() as tx:
        terminal, credential = await accounts.create_terminal(tx, "和平社区终端", community.id)
        revoked, revoked_credential = await accounts.create_terminal(tx, "旧终端", community.id)
        await accounts.revoke_terminal(tx, revoked.id)
        await sessions.create_announcement(tx, street.id, "街道通知", "正文", 1, later)
        await sessions.create_announcement(tx, community.id, "社区通知", "正文", 1, later)
        await sessions.create_announcement(tx, other.id, "别处通知", "正文", 1, later)
        gone = await sessions.create_announcement(tx, community.id, "撤回", "正文", 1, later)
        await sessions.withdraw_announcement(tx, gone.id)
        visit = await sessions.create_session(
            tx,
            kind=SessionKind.VISIT,
            unit_id=community.id,
            reception_unit_id=tree.reception_unit(community.id).id,  # type: ignore[union-attr]
            terminal_id=terminal.id,
        )

    for cred in (credential, revoked_credential, "pgt_unknown", "not-a-credential"):
        core = await store.run(sessions.terminal_hello, cred, tree)
        async with store.transaction() as tx:
            orm_terminal = await accounts.resolve_terminal(tx, cred)
            if orm_terminal is None:
                assert core == sessions.TerminalHello(None, [], None)
                continue
            orm_anns = await sessions.active_announcements(tx, tree.ancestors(orm_terminal.unit_id))
            orm_visit = await sessions.open_visit_of_terminal(tx, orm_terminal.id)
        assert core.terminal == orm_terminal
        assert core.announcements == orm_anns
        assert [a.title for a in core.announcements] == ["社区通知", "街道通知"]
        assert core.visit == orm_visit
        assert core.visit is not None
        assert core.visit.id == visit.id


async def test_join_session_agrees_with_the_orm_reads_and_writes_the_same_rows(
    store: Store,
) -> None:
    unit = store.tree.by_code["QX-DFJD"].id
    async with store.transaction() as tx:
        s = await sessions.create_session(
            tx, kind=SessionKind.TRAINING, unit_id=unit, title="培训", convener_account_id=1
        )
        convener = await sessions.add_participant(
            tx,
            s.id,
            _official(1, unit),
            ParticipantRole.CONVENER,
            AdmissionState.ADMITTED,
            joined=True,
        )
        viewer = await sessions.add_participant(
            tx,
            s.id,
            _official(2, unit),
            ParticipantRole.VIEWER,
            AdmissionState.ADMITTED,
            joined=True,
        )
        gone = await sessions.add_participant(
            tx,
            s.id,
            _official(3, unit),
            ParticipantRole.SPEAKER,
            AdmissionState.ADMITTED,
            joined=True,
        )
        await sessions.participant_left(tx, gone.id, "left")

    # the Core join of one official, starting the session
    joiner = _official(4, unit)
    decision = sessions.JoinDecision(ParticipantRole.SPEAKER, AdmissionState.ADMITTED, True)
    seen: list[sessions.SessionInfo] = []

    def decide(info: sessions.SessionInfo) -> sessions.JoinDecision:
        seen.append(info)
        return decision

    async with store.transaction() as tx:
        expected_seen = await sessions.get_session_for(tx, s.id, joiner.ref)
    view = await store.run(
        sessions.join_session, s.id, joiner, decide, hidden=_hidden, hub_id="hub-a"
    )
    assert seen == [expected_seen]
    assert view.participant is not None
    core_p = view.participant
    async with store.transaction() as tx:
        # the row written is the row the ORM reads back, the session is what it reads after
        assert core_p == await sessions.get_participant(tx, core_p.id)
        assert view.session == await sessions.get_session_for(tx, s.id, joiner.ref)
        assert view.session.state is SessionState.LIVE
        # present: what session_participants lists without the hidden roles
        assert list(view.present) == await sessions.session_participants(
            tx, s.id, present_only=True, exclude_roles=_hidden(SessionKind.TRAINING)
        )
        assert [p.id for p in view.present] == [convener.id, core_p.id]
        assert viewer.id not in {p.id for p in view.present}

    # the ORM join of another official writes the same kind of row and the same event
    other = _official(5, unit)
    async with store.transaction() as tx:
        orm_p = await sessions.add_participant(
            tx, s.id, other, decision.role, decision.admission, joined=True, hub_id="hub-a"
        )
        await sessions.log_event(
            tx, s.id, "joined", actor=other.ref, participant_id=orm_p.id, data={"role": "speaker"}
        )
    async with store.transaction() as tx:
        orm_read = await sessions.get_participant(tx, orm_p.id)
        fields = ("role", "admission", "unit_id", "left_at", "leave_reason", "publishing", "hub_id")
        assert [getattr(core_p, f) for f in fields] == [getattr(orm_read, f) for f in fields]
        assert core_p.joined_at is not None
        assert orm_read.joined_at is not None
        events = _events(await sessions.session_events(tx, s.id))
    assert (joiner.ref, "joined", core_p.id, {"role": "speaker"}) in events
    assert (other.ref, "joined", orm_p.id, {"role": "speaker"}) in events


async def test_join_session_with_no_decision_writes_nothing(store: Store) -> None:
    unit = store.tree.by_code["QX-DFJD"].id
    member = _official(1, unit)
    async with store.transaction() as tx:
        s = await sessions.create_session(tx, kind=SessionKind.CONFERENCE, unit_id=unit)
        await sessions.add_participant(
            tx, s.id, member, ParticipantRole.MEMBER, AdmissionState.ADMITTED, joined=True
        )
        events = await sessions.session_events(tx, s.id)
    view = await store.run(
        sessions.join_session, s.id, member, lambda _s: None, hidden=_hidden, hub_id="hub-a"
    )
    async with store.transaction() as tx:
        assert view.participant is None
        assert view.session == await sessions.get_session_for(tx, s.id, member.ref)
        assert list(view.present) == await sessions.session_participants(
            tx, s.id, present_only=True
        )
        assert await sessions.session_events(tx, s.id) == events


async def test_leave_session_agrees_with_participant_left_and_log_event(store: Store) -> None:
    unit = store.tree.by_code["QX-DFJD"].id
    a, b = _official(1, unit), _official(2, unit)
    async with store.transaction() as tx:
        s = await sessions.create_session(tx, kind=SessionKind.CONFERENCE, unit_id=unit)
        pa = await sessions.add_participant(
            tx, s.id, a, ParticipantRole.MEMBER, AdmissionState.ADMITTED, joined=True
        )
        pb = await sessions.add_participant(
            tx, s.id, b, ParticipantRole.MEMBER, AdmissionState.ADMITTED, joined=True
        )
        await sessions.set_participant(tx, pa.id, publishing=True)
        await sessions.set_participant(tx, pb.id, publishing=True)

    # b leaves the ORM way (publishing cleared as the hub does), then a the Core way
    async with store.transaction() as tx:
        await sessions.participant_left(tx, pb.id, "left")
        await sessions.set_participant(tx, pb.id, publishing=False)
        await sessions.log_event(tx, s.id, "left", participant_id=pb.id, data={"reason": "left"})
    view = await store.run(sessions.leave_session, s.id, pa.id, "left")
    again = await store.run(sessions.leave_session, s.id, pa.id, "later")

    async with store.transaction() as tx:
        assert view.session == dataclasses.replace(
            await sessions.get_session_for(tx, s.id, a.ref),
            last_activity_at=view.session.last_activity_at,
        )
        assert view.participant == await sessions.get_participant(tx, pa.id)
        assert again.participant == view.participant  # the first leave wins
        orm_b = await sessions.get_participant(tx, pb.id)
        fields = ("admission", "leave_reason", "publishing")
        assert [getattr(view.participant, f) for f in fields] == [getattr(orm_b, f) for f in fields]
        assert view.participant.left_at is not None
        present = await sessions.session_participants(tx, s.id, present_only=True)
        assert view.nobody_left is (not any(p.joined_at for p in present))
        assert view.nobody_left
        events = _events(await sessions.session_events(tx, s.id))
    assert ("", "left", pb.id, {"reason": "left"}) in events
    assert ("", "left", pa.id, {"reason": "left"}) in events


async def test_periodic_reads_and_writes_agree_with_the_orm(store: Store) -> None:
    unit = store.tree.by_code["QX-DFJD"].id
    other_unit = store.tree.by_code["QX-DFJD-HPSQ"].id
    async with store.transaction() as tx:
        live = await sessions.create_session(
            tx, kind=SessionKind.TRAINING, unit_id=unit, convener_account_id=1
        )
        waiting = await sessions.create_session(tx, kind=SessionKind.CONFERENCE, unit_id=unit)
        await sessions.set_state(tx, live.id, SessionState.LIVE)
        rows = []
        for i, (role, who_unit, hub, joined) in enumerate(
            [
                (ParticipantRole.TRAINER, unit, "hub-a", True),
                (ParticipantRole.VIEWER, unit, "hub-a", True),
                (ParticipantRole.VIEWER, other_unit, "hub-b", True),
                (ParticipantRole.VIEWER, other_unit, "hub-dead", True),
                (ParticipantRole.SPEAKER, other_unit, "hub-dead", True),
                (ParticipantRole.VIEWER, other_unit, "", True),
                (ParticipantRole.VIEWER, unit, "hub-dead", False),  # in the lobby, not joined
            ],
            start=1,
        ):
            admission = AdmissionState.ADMITTED if joined else AdmissionState.LOBBY
            rows.append(
                await sessions.add_participant(
                    tx, live.id, _official(i, who_unit), role, admission, joined=joined, hub_id=hub
                )
            )
        await sessions.participant_left(tx, rows[2].id, "left")

    roles = (ParticipantRole.VIEWER, ParticipantRole.SPEAKER)
    core_counts = await store.run(sessions.attendance, live.id, roles)
    core_orphans = await store.run(sessions.orphans, ["hub-a", "hub-b"])
    async with store.transaction() as tx:
        assert core_counts == await sessions.attendance_counts(tx, live.id, roles)
        orm_orphans = await sessions.orphaned_participants(tx, ["hub-a", "hub-b"])
        assert sorted(core_orphans, key=lambda p: p.id) == sorted(orm_orphans, key=lambda p: p.id)
        before = {s: await sessions.get_session(tx, s) for s in (live.id, waiting.id)}
    assert core_counts == {unit: 1, other_unit: 3}
    assert {p.id for p in core_orphans} == {rows[3].id, rows[4].id, rows[6].id}

    # touching: only live sessions get a new activity time, as through the ORM
    await store.run(sessions.touch_live_sessions, [live.id, waiting.id])
    async with store.transaction() as tx:
        core_touched = {s: await sessions.get_session(tx, s) for s in (live.id, waiting.id)}
        await sessions.touch_sessions(tx, [live.id, waiting.id])
    async with store.transaction() as tx:
        orm_touched = {s: await sessions.get_session(tx, s) for s in (live.id, waiting.id)}
    for touched in (core_touched, orm_touched):
        assert touched[waiting.id] == before[waiting.id]
        assert touched[live.id].last_activity_at is not None
        assert before[live.id].last_activity_at is not None
        assert touched[live.id].last_activity_at > before[live.id].last_activity_at
    assert orm_touched[live.id].last_activity_at > core_touched[live.id].last_activity_at  # type: ignore[operator]
    await store.run(sessions.touch_live_sessions, [])  # nothing to touch: no statement
