"""The access matrix: every role × scope on sessions, through the real HTTP API.

Sessions are written straight into the store (as the hub would); reads go through the API,
so the policy, the auth middleware and the audit log are all exercised.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from records import accounts, sessions
from records.enums import AdmissionState, ParticipantRole, SessionKind
from tests.helpers import Api
from web import keys


async def _visit_of(api: Api, community: str) -> str:
    seed = api.seed
    tree = seed.store.tree
    async with seed.store.transaction() as tx:
        s = await sessions.create_session(
            tx,
            kind=SessionKind.VISIT,
            unit_id=seed.units[community],
            reception_unit_id=tree.by_code["QX-XFJ-JDZX"].id,
            terminal_id=seed.terminal_ids.get(community),
            category="housing",
        )
    return s.id


# who → whether they may read a visit from 和平社区 (QX-DFJD-HPSQ, under 东风街道)
MATRIX = {
    "bureau_admin": True,  # petition bureau: sees everything
    "reception": True,  # the reception centre answers all visits of the district
    "leader": True,  # petition bureau leader
    "dongfeng": True,  # the sub-district sees its communities
    "heping_agent": True,  # the community itself
    "hehua": False,  # another sub-district
    "binhe_agent": False,  # another community
    "housing": False,  # a department that was not pulled in
    "mediator": False,  # judicial bureau, not involved
}


@pytest.mark.parametrize(("who", "allowed"), sorted(MATRIX.items()))
async def test_official_scope(api: Api, who: str, allowed: bool) -> None:
    sid = await _visit_of(api, "QX-DFJD-HPSQ")
    headers = await api.login(who)
    resp = await api.client.get(f"/api/sessions/{sid}", headers=headers)
    assert resp.status == (200 if allowed else 403), await resp.text()
    async with api.seed.store.transaction() as tx:
        log = await accounts.audit_entries(tx, object_id=sid)
    actor = f"account:{api.seed.account_ids[who]}"
    mine = [e for e in log if e.actor == actor]
    assert mine, "every read and every refusal is audit-logged"
    assert mine[0].outcome == ("ok" if allowed else "denied")


async def test_sub_district_lists_only_its_subtree(api: Api) -> None:
    ours = await _visit_of(api, "QX-DFJD-HPSQ")
    theirs = await _visit_of(api, "QX-HHJD-BHSQ")
    headers = await api.login("dongfeng")
    body = await (await api.client.get("/api/sessions", headers=headers)).json()
    ids = {s["id"] for s in body["sessions"]}
    assert ours in ids
    assert theirs not in ids
    bureau = await api.login("bureau_admin")
    body = await (await api.client.get("/api/sessions", headers=bureau)).json()
    assert {ours, theirs} <= {s["id"] for s in body["sessions"]}


async def test_terminal_reads_only_its_own_sessions(api: Api) -> None:
    own = await _visit_of(api, "QX-DFJD-HPSQ")
    other = await _visit_of(api, "QX-HHJD-BHSQ")
    heping = api.terminal("QX-DFJD-HPSQ")
    assert (await api.client.get(f"/api/sessions/{own}", headers=heping)).status == 200
    assert (await api.client.get(f"/api/sessions/{other}", headers=heping)).status == 403
    # a terminal is not an official: no lists, no admin
    assert (await api.client.get("/api/sessions", headers=heping)).status == 403


async def test_revoked_terminal_is_refused(api: Api) -> None:
    sid = await _visit_of(api, "QX-DFJD-HPSQ")
    admin = await api.login("bureau_admin")
    tid = api.seed.terminal_ids["QX-DFJD-HPSQ"]
    assert (await api.client.delete(f"/api/terminals/{tid}", headers=admin)).status == 200
    resp = await api.client.get(f"/api/sessions/{sid}", headers=api.terminal("QX-DFJD-HPSQ"))
    assert resp.status == 401


async def test_invite_bound_to_one_session_expiry_and_revocation(api: Api) -> None:
    sid = await _visit_of(api, "QX-DFJD-HPSQ")
    other = await _visit_of(api, "QX-DFJD-XYSQ")
    reception = await api.login("reception")
    resp = await api.client.post(
        f"/api/sessions/{sid}/invites",
        json={"role": "lawyer", "name": "律师 张伟", "ttl_s": 3600},
        headers=reception,
    )
    assert resp.status == 201, await resp.text()
    invite = await resp.json()
    bearer = {"Authorization": f"Bearer {invite['token']}"}
    # its own session: readable once admitted (tests/signaling/test_invitee_reads.py); before
    # that the answer says so, while another session is plainly forbidden
    own = await api.client.get(f"/api/sessions/{sid}", headers=bearer)
    assert own.status == 403
    assert (await own.json())["error"]["code"] == "not_admitted"
    elsewhere = await api.client.get(f"/api/sessions/{other}", headers=bearer)
    assert elsewhere.status == 403
    assert (await elsewhere.json())["error"]["code"] == "forbidden"
    # a tampered token is refused
    bad = {"Authorization": f"Bearer {invite['token'][:-2]}xx"}
    assert (await api.client.get(f"/api/sessions/{sid}", headers=bad)).status == 401
    # revoked
    assert (
        await api.client.delete(f"/api/invites/{invite['id']}", headers=reception)
    ).status == 200
    assert (await api.client.get(f"/api/sessions/{sid}", headers=bearer)).status == 401


async def test_expired_invite_is_refused(api: Api) -> None:
    sid = await _visit_of(api, "QX-DFJD-HPSQ")
    async with api.seed.store.transaction() as tx:
        _inv, token = await accounts.create_invite(
            tx,
            api.app[keys.SETTINGS].secret_key,
            sid,
            ParticipantRole.COUNSELLOR,
            "咨询师",
            None,
            None,
            dt.timedelta(seconds=1),
        )
    await asyncio.sleep(1.2)
    resp = await api.client.get(
        f"/api/sessions/{sid}", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 401


async def test_admin_scope_for_terminals_and_accounts(api: Api) -> None:
    local_admin = await api.login("dongfeng_admin")
    heping = api.seed.units["QX-DFJD-HPSQ"]
    binhe = api.seed.units["QX-HHJD-BHSQ"]
    ok = await api.client.post(
        "/api/terminals", json={"unit_id": heping, "name": "二号终端"}, headers=local_admin
    )
    assert ok.status == 201
    assert (await ok.json())["credential"].startswith("pgt_")
    no = await api.client.post(
        "/api/terminals", json={"unit_id": binhe, "name": "x"}, headers=local_admin
    )
    assert no.status == 403
    reception = await api.login("reception")
    no = await api.client.post(
        "/api/terminals", json={"unit_id": heping, "name": "x"}, headers=reception
    )
    assert no.status == 403
    async with api.seed.store.transaction() as tx:
        denied = await accounts.audit_entries(tx, action="manage_terminals")
    assert len([e for e in denied if e.outcome == "denied"]) == 2


async def test_participant_of_a_session_outside_scope_can_read_it(api: Api) -> None:
    """A department official pulled into a visit reads that session, not the others."""
    sid = await _visit_of(api, "QX-DFJD-HPSQ")
    other = await _visit_of(api, "QX-DFJD-HPSQ")
    async with api.seed.store.transaction() as tx:
        acc = await accounts.get_account(tx, api.seed.account_ids["housing"])
        await sessions.add_participant(
            tx, sid, acc.principal(), ParticipantRole.OFFICIAL, AdmissionState.ADMITTED, joined=True
        )
    headers = await api.login("housing")
    assert (await api.client.get(f"/api/sessions/{sid}", headers=headers)).status == 200
    assert (await api.client.get(f"/api/sessions/{other}", headers=headers)).status == 403
