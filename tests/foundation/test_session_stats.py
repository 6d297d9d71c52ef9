"""Session figures of the report: visits (batches, person-times), leader receptions,
sessions by kind and level, training attendance, ratings — over the real /api/stats."""

from __future__ import annotations

import datetime as dt

from records import accounts, sessions
from records.enums import AdmissionState, ParticipantRole, SessionKind, SessionState
from records.principals import Principal
from tests.helpers import Api


async def _held(api: Api, kind: SessionKind, unit: str, **fields: object) -> str:
    store = api.seed.store
    async with store.transaction() as tx:
        s = await sessions.create_session(tx, kind=kind, unit_id=api.seed.units[unit], **fields)  # type: ignore[arg-type]
        await sessions.set_state(tx, s.id, SessionState.LIVE)
    return s.id


async def _join(api: Api, sid: str, principal: Principal, role: ParticipantRole) -> None:
    async with api.seed.store.transaction() as tx:
        await sessions.add_participant(
            tx, sid, principal, role, AdmissionState.ADMITTED, joined=True
        )


async def test_session_figures_in_the_report(api: Api) -> None:
    seed = api.seed
    reception = seed.store.tree.by_code["QX-XFJ-JDZX"].id
    async with seed.store.transaction() as tx:
        leader = await accounts.get_account(tx, seed.account_ids["leader"])
        heping = await accounts.resolve_terminal(tx, seed.terminals["QX-DFJD-HPSQ"])
        binhe = await accounts.resolve_terminal(tx, seed.terminals["QX-HHJD-BHSQ"])
        viewer_a = await accounts.get_account(tx, seed.account_ids["dongfeng"])
        viewer_b = await accounts.get_account(tx, seed.account_ids["hehua"])
    assert heping is not None
    assert binhe is not None
    v1 = await _held(api, SessionKind.VISIT, "QX-DFJD-HPSQ", reception_unit_id=reception)
    v2 = await _held(
        api,
        SessionKind.VISIT,
        "QX-HHJD-BHSQ",
        reception_unit_id=reception,
        routed_to_leader_id=leader.id,
    )
    await _join(api, v1, heping.principal(), ParticipantRole.RESIDENT)
    await _join(api, v2, binhe.principal(), ParticipantRole.RESIDENT)
    async with seed.store.transaction() as tx:
        await sessions.update_session(tx, v1, rating=5)
        await sessions.update_session(tx, v2, rating=3)
    t = await _held(api, SessionKind.TRAINING, "QX-XFJ")
    for viewer in (viewer_a, viewer_b, viewer_a):  # the same viewer twice counts once
        await _join(api, t, viewer.principal(), ParticipantRole.VIEWER)
    await _held(api, SessionKind.CONFERENCE, "QX-DFJD")
    # waiting (never live) sessions are not "held"
    async with seed.store.transaction() as tx:
        await sessions.create_session(
            tx, kind=SessionKind.VISIT, unit_id=seed.units["QX-DFJD-HPSQ"]
        )

    year = dt.datetime.now(dt.UTC).year
    headers = await api.login("leader")
    body = await (await api.client.get(f"/api/stats?year={year}", headers=headers)).json()
    held = body["sessions"]
    assert held["by_kind"] == {"visit": 2, "training": 1, "conference": 1}
    assert held["by_kind_and_level"] == {
        "visit:community": 2,
        "training:department": 1,
        "conference:subdistrict": 1,
    }
    assert held["visit_batches"] == 2
    assert held["visit_person_times"] == 2
    assert held["leader_receptions"] == 1
    assert held["training_attendance"] == {
        str(seed.units["QX-DFJD"]): 1,
        str(seed.units["QX-HHJD"]): 1,
    }
    assert held["visit_ratings"] == {"5": 1, "3": 1}

    # a sub-district sees only what was held for its own subtree
    dongfeng = await api.login("dongfeng")
    body = await (await api.client.get(f"/api/stats?year={year}", headers=dongfeng)).json()
    assert body["sessions"]["by_kind"] == {"visit": 1, "conference": 1}


async def test_session_figures_as_of_a_time_leave_out_what_came_later(api: Api) -> None:
    seed = api.seed
    reception = seed.store.tree.by_code["QX-XFJ-JDZX"].id
    async with seed.store.transaction() as tx:
        heping = await accounts.resolve_terminal(tx, seed.terminals["QX-DFJD-HPSQ"])
        binhe = await accounts.resolve_terminal(tx, seed.terminals["QX-HHJD-BHSQ"])
    assert heping is not None
    assert binhe is not None
    v1 = await _held(api, SessionKind.VISIT, "QX-DFJD-HPSQ", reception_unit_id=reception)
    await _join(api, v1, heping.principal(), ParticipantRole.RESIDENT)
    cut = dt.datetime.now(dt.UTC)
    v2 = await _held(api, SessionKind.VISIT, "QX-HHJD-BHSQ", reception_unit_id=reception)
    await _join(api, v2, binhe.principal(), ParticipantRole.RESIDENT)
    await _join(api, v1, binhe.principal(), ParticipantRole.RESIDENT)  # joins v1 late

    year = dt.datetime(cut.year, 1, 1, tzinfo=dt.UTC)
    next_year = dt.datetime(cut.year + 1, 1, 1, tzinfo=dt.UTC)
    async with seed.store.transaction() as tx:
        then = await sessions.session_statistics(
            tx, start=year, end=next_year, unit_ids=None, as_of=cut
        )
        now = await sessions.session_statistics(tx, start=year, end=next_year, unit_ids=None)
    assert (then.visit_batches, then.visit_person_times) == (1, 1)
    assert (now.visit_batches, now.visit_person_times) == (2, 3)
