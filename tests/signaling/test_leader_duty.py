"""Leader duty reception (领导接访): who takes which visit, and who may be on the roster.

Issue 13, findings 6 and 9: any leader in scope could accept any visit, including one routed
to the leader on duty, and the roster accepted a leader of another unit.
"""

from __future__ import annotations

from records.base import utcnow
from records.deadlines import local_date
from tests.helpers import Api

HPSQ = "QX-DFJD-HPSQ"


def _today() -> str:
    """Today as the roster counts days: in China, whatever the host's time zone."""
    return local_date(utcnow()).isoformat()


async def _put_duty(api: Api, headers: dict[str, str], unit: str, who: str) -> int:
    resp = await api.client.put(
        f"/api/duty/{_today()}",
        json={"unit_id": api.seed.units[unit], "account_id": api.seed.account_ids[who]},
        headers=headers,
    )
    return resp.status


async def test_a_visit_for_the_leader_on_duty_is_taken_by_that_leader_alone(api: Api) -> None:
    admin = await api.login("bureau_admin")
    assert await _put_duty(api, admin, "QX-XFJ", "leader") == 200
    kiosk = await api.ws(token=api.seed.terminals[HPSQ])
    visit = await kiosk.call("visit.request", category="housing", to_leader=True)
    sid = visit["session"]["id"]
    # the reception centre and the sub-district's own leader (visit in its scope) may not
    for who in ("reception", "dongfeng"):
        other = await api.ws(headers=await api.login(who))
        watched = await other.call("queue.watch")
        assert sid not in {v["session"] for v in watched["visits"]}, who
        refused = await other.request({"type": "visit.accept", "session": sid})
        assert refused["code"] == "forbidden", (who, refused)
        assert str(api.seed.account_ids["leader"]) in refused["message"]
    leader = await api.ws(headers=await api.login("leader"))
    watched = await leader.call("queue.watch")
    assert [v["to_leader"] for v in watched["visits"] if v["session"] == sid] == [True]
    accepted = await leader.call("visit.accept", session=sid)
    assert accepted["participant"]["role"] == "officer"


async def test_an_ordinary_visit_is_taken_by_a_leader_only_from_its_own_subtree(
    api: Api,
) -> None:
    kiosk = await api.ws(token=api.seed.terminals[HPSQ])
    sid = (await kiosk.call("visit.request", category="housing"))["session"]["id"]
    hehua = await api.ws(headers=await api.login("hehua"))  # leader of another sub-district
    assert (await hehua.request({"type": "visit.accept", "session": sid}))["code"] == "forbidden"
    dongfeng = await api.ws(headers=await api.login("dongfeng"))  # 和平社区 is below 东风街道
    await dongfeng.call("visit.accept", session=sid)


async def test_the_duty_roster_names_only_leaders_of_that_unit(api: Api) -> None:
    admin = await api.login("bureau_admin")
    # a leader of 东风街道 on the bureau's roster: refused, whatever the admin's scope
    resp = await api.client.put(
        f"/api/duty/{_today()}",
        json={"unit_id": api.seed.units["QX-XFJ"], "account_id": api.seed.account_ids["dongfeng"]},
        headers=admin,
    )
    assert resp.status == 422, await resp.text()
    message = (await resp.json())["error"]["message"]
    assert "dongfeng" in message
    assert str(api.seed.units["QX-DFJD"]) in message
    assert await _put_duty(api, admin, "QX-DFJD", "dongfeng") == 200
    assert await _put_duty(api, admin, "QX-XFJ", "leader") == 200
    assert await _put_duty(api, admin, "QX-XFJ", "reception") == 422  # not a leader
