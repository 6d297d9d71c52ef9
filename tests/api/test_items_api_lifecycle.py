"""The item lifecycle over HTTP: the main path, illegal transitions, history and notices."""

from __future__ import annotations

from records import accounts
from tests.api.items_api_support import act, register
from tests.helpers import Api


async def test_main_path_from_registration_to_conclusion(api: Api) -> None:
    dongfeng = await api.login("dongfeng")
    item = await register(api, dongfeng, "QX-DFJD-HPSQ")
    assert item["state"] == "registered"
    assert item["due"]["what"] == "route"
    assert "transfer" in item["allowed_actions"]
    iid = item["id"]
    housing_unit = api.seed.units["QX-ZJJ"]
    moved = await act(api, dongfeng, iid, "transfer", to_unit_id=housing_unit, reason="住建职责")
    assert moved["state"] == "transferred"
    assert moved["handling_unit_id"] == housing_unit

    # the sub-district no longer holds it: it may read it but not move it
    await act(api, dongfeng, iid, "acknowledge", status=403)
    housing = await api.login("housing")
    assert (await act(api, housing, iid, "acknowledge"))["state"] == "received"
    accepted = await act(api, housing, iid, "accept")
    assert accepted["state"] == "accepted"
    assert accepted["due"]["what"] == "opinion"
    assert accepted["accepted_on_time"] is True

    leader_id = api.seed.account_ids["leader"]
    extended = await act(
        api, housing, iid, "extend", days=10, approved_by=leader_id, reason="需现场勘查"
    )
    assert extended["state"] == "accepted"
    assert extended["due"]["on"] > accepted["due"]["on"]

    opinion = await act(
        api,
        housing,
        iid,
        "opinion",
        decision="支持：补贴于30日内发放",
        legal_basis="《既有住宅加装电梯补贴办法》第五条",
    )
    assert opinion["state"] == "opinion_issued"
    outcome = await act(api, housing, iid, "outcome", outcome="support", resolved=True)
    assert outcome["resolved"] is True
    # concluding inside the petitioner's review window needs their written waiver
    refused = await act(api, housing, iid, "conclude", status=422)
    assert "review" in refused["error"]["message"]
    done = await act(api, housing, iid, "conclude", petitioner_waived=True)
    assert done["state"] == "concluded"
    assert done["allowed_actions"] == ["outcome", "note"]

    resp = await api.client.get(f"/api/items/{iid}/history", headers=housing)
    history = (await resp.json())["history"]
    assert [h["type"] for h in history] == [
        "register",
        "transfer",
        "receive",
        "accept",
        "extend",
        "issue_opinion",
        "set_outcome",
        "conclude",
    ]
    assert history[1]["reason"] == "住建职责"
    assert history[1]["account_id"] == api.seed.account_ids["dongfeng"]


async def test_illegal_transition_is_409_naming_state_and_allowed_and_changes_nothing(
    api: Api,
) -> None:
    reception = await api.login("reception")
    item = await register(api, reception, "QX-XFJ-JDZX")
    before = await (
        await api.client.get(f"/api/items/{item['id']}/history", headers=reception)
    ).json()
    body = await act(api, reception, item["id"], "acknowledge", status=409)
    err = body["error"]
    assert err["code"] == "invalid_transition"
    assert err["state"] == "registered"
    assert err["allowed_actions"] == [
        "transfer",
        "assign",
        "divert",
        "not-accept",
        "accept",
        "transfer-out",
        "note",
    ]
    assert "'registered'" in err["message"]
    assert "'transfer'" in err["message"]
    after = await (
        await api.client.get(f"/api/items/{item['id']}/history", headers=reception)
    ).json()
    assert after == before
    fresh = await (await api.client.get(f"/api/items/{item['id']}", headers=reception)).json()
    assert fresh["state"] == "registered"
    assert fresh["version"] == item["version"]

    # and from a terminal state nothing but annotations
    await act(api, reception, item["id"], "not-accept", reason="不属于信访事项受理范围")
    again = await act(api, reception, item["id"], "transfer", status=409, to_unit_id=1)
    assert again["error"]["state"] == "not_accepted"
    assert again["error"]["allowed_actions"] == ["note"]


async def test_objection_returns_the_item_and_assignment_carries_its_deadline(api: Api) -> None:
    reception = await api.login("reception")
    item = await register(api, reception, "QX-XFJ-JDZX")
    hr = api.seed.units["QX-ZJJ"]
    assigned = await act(api, reception, item["id"], "assign", to_unit_id=hr, due="2099-01-31")
    assert assigned["state"] == "assigned"
    assert assigned["due"] == {
        "on": "2099-01-31",
        "what": "assignment_report",
        "article": assigned["due"]["article"],
        # a date the assigning body set: no holiday notice moves it, even in 2099
        "provisional": False,
    }
    housing = await api.login("housing")
    await act(api, housing, item["id"], "acknowledge")
    await act(api, housing, item["id"], "object", status=422)  # a reason is required
    back = await act(api, housing, item["id"], "object", reason="不属于本单位职权范围")
    assert back["state"] == "returned"
    assert back["handling_unit_id"] == api.seed.units["QX-XFJ-JDZX"]
    # the returning unit can no longer act; the reception centre routes it again
    await act(api, housing, item["id"], "transfer", status=403, to_unit_id=hr)
    await act(api, reception, item["id"], "divert", reason="属于劳动仲裁范围")


async def test_notices_render_with_the_lookup_code_and_escape_input(api_sqlite: Api) -> None:
    api = api_sqlite
    reception = await api.login("reception")
    item = await register(
        api, reception, "QX-XFJ-JDZX", request="<script>alert(1)</script>要求补发工资"
    )
    iid, code = item["id"], item["lookup_code"]
    resp = await api.client.get(f"/api/items/{iid}/notices/acceptance", headers=reception)
    assert resp.status == 404  # not accepted yet: there is nothing to notify
    await act(api, reception, iid, "assign", to_unit_id=api.seed.units["QX-XFJ-JDZX"])
    await act(api, reception, iid, "acknowledge")
    await act(api, reception, iid, "accept")
    await act(
        api,
        reception,
        iid,
        "extend",
        days=30,
        approved_by=api.seed.account_ids["leader"],
        reason="涉及多个部门",
    )
    await act(api, reception, iid, "opinion", decision="不支持", legal_basis="《劳动法》第五十条")
    pages = {}
    for kind in ("acceptance", "extension", "opinion"):
        resp = await api.client.get(f"/api/items/{iid}/notices/{kind}", headers=reception)
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "text/html"
        pages[kind] = await resp.text()
        assert code in pages[kind]
        assert "<script>alert(1)" not in pages[kind]
    assert "受理告知书" in pages["acceptance"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;要求补发工资" in pages["acceptance"]
    assert "延长30日" in pages["extension"]
    assert "Leader" in pages["extension"]
    assert "涉及多个部门" in pages["extension"]
    assert "处理意见书" in pages["opinion"]
    assert "《劳动法》第五十条" in pages["opinion"]
    assert "复查" in pages["opinion"]

    other = await register(api, reception, "QX-XFJ-JDZX")
    await act(api, reception, other["id"], "not-accept", reason="已经依法处理终结")
    resp = await api.client.get(
        f"/api/items/{other['id']}/notices/non-acceptance", headers=reception
    )
    page = await resp.text()
    assert "不予受理告知书" in page
    assert "已经依法处理终结" in page
    assert other["lookup_code"] in page
    async with api.seed.store.transaction() as tx:
        log = await accounts.audit_entries(tx, action="item_notice", object_id=other["id"])
    assert len(log) == 1


async def test_link_session_and_list_its_sessions(api_sqlite: Api) -> None:
    from records import sessions  # noqa: PLC0415
    from records.enums import SessionKind  # noqa: PLC0415

    api = api_sqlite
    async with api.seed.store.transaction() as tx:
        s = await sessions.create_session(
            tx,
            kind=SessionKind.VISIT,
            unit_id=api.seed.units["QX-DFJD-HPSQ"],
            reception_unit_id=api.seed.units["QX-XFJ-JDZX"],
            category="housing",
        )
    reception = await api.login("reception")
    item = await register(api, reception, "QX-XFJ-JDZX", channel="video", session_id=s.id)
    assert item["session_id"] == s.id
    listed = await (
        await api.client.get(f"/api/items/{item['id']}/sessions", headers=reception)
    ).json()
    assert [x["id"] for x in listed["sessions"]] == [s.id]
    assert listed["sessions"][0]["item_id"] == item["id"]
    other = await register(api, reception, "QX-XFJ-JDZX")
    resp = await api.client.post(
        f"/api/items/{other['id']}/sessions", json={"session_id": s.id}, headers=reception
    )
    assert resp.status == 200, await resp.text()
    listed = await (
        await api.client.get(f"/api/items/{other['id']}/sessions", headers=reception)
    ).json()
    assert [x["id"] for x in listed["sessions"]] == [s.id]


async def test_a_competent_unit_accepts_directly_and_nobody_accepts_for_it(api: Api) -> None:
    units = api.seed.units
    dongfeng = await api.login("dongfeng")
    own = await register(api, dongfeng, "QX-DFJD")
    accepted = await act(api, dongfeng, own["id"], "accept")
    assert (accepted["state"], accepted["handling_unit_id"]) == ("accepted", units["QX-DFJD"])
    assert accepted["due"]["what"] == "opinion"
    history = await (
        await api.client.get(f"/api/items/{own['id']}/history", headers=dongfeng)
    ).json()
    assert [h["type"] for h in history["history"]] == ["register", "accept"]  # no self-transfer

    # the reception centre registers and routes; it does not accept for the competent unit
    reception = await api.login("reception")
    item = await register(api, reception, "QX-XFJ-JDZX")
    refused = await act(api, reception, item["id"], "accept", status=422)
    assert "cannot accept it on behalf of the competent unit" in refused["error"]["message"]
    await act(api, reception, item["id"], "transfer", to_unit_id=units["QX-ZJJ"])
    waiting = await act(api, reception, item["id"], "note", reason="已电话告知住建局")
    assert waiting["due"]["what"] == "receive"  # never acknowledged: still on the due lists
    housing = await api.login("housing")
    await act(api, housing, item["id"], "acknowledge")
    # the bureau sees every unit, yet acceptance is the housing bureau's own act
    leader = await api.login("leader")
    on_behalf = await act(api, leader, item["id"], "accept", status=422)
    assert (
        f"competent unit {units['QX-ZJJ']} itself; unit {units['QX-XFJ']} cannot accept"
        in on_behalf["error"]["message"]
    )
    assert (await act(api, housing, item["id"], "accept"))["state"] == "accepted"


async def test_the_handling_unit_refuses_or_diverts_after_routing(api: Api) -> None:
    reception = await api.login("reception")
    housing = await api.login("housing")
    for action, state in (("not-accept", "not_accepted"), ("divert", "diverted")):
        item = await register(api, reception, "QX-XFJ-JDZX")
        await act(api, reception, item["id"], "transfer", to_unit_id=api.seed.units["QX-ZJJ"])
        await act(api, housing, item["id"], "acknowledge")
        done = await act(api, housing, item["id"], action, reason="属于行政复议范围")
        assert done["state"] == state


async def test_an_accusation_is_not_sent_to_the_unit_it_accuses_and_carries_its_handler(
    api: Api,
) -> None:
    units, ids = api.seed.units, api.seed.account_ids
    reception = await api.login("reception")
    secret = await register(
        api, reception, "QX-XFJ-JDZX", type="accusation", subject_unit_id=units["QX-ZJJ"]
    )
    refused = await act(
        api, reception, secret["id"], "transfer", status=422, to_unit_id=units["QX-ZJJ"]
    )
    assert f"accuses unit {units['QX-ZJJ']}" in refused["error"]["message"]
    assert "Art. 30" in refused["error"]["message"]
    wrong = await act(
        api,
        reception,
        secret["id"],
        "transfer",
        status=422,
        to_unit_id=units["QX-DFJD"],
        handler_account_id=ids["housing"],
    )
    assert "is not of the receiving unit" in wrong["error"]["message"]
    moved = await act(
        api,
        reception,
        secret["id"],
        "transfer",
        to_unit_id=units["QX-DFJD"],
        handler_account_id=ids["dongfeng"],
    )
    assert ids["dongfeng"] in moved["handler_account_ids"]
    # the named handler sees the confidential item at once, with no separate handler call
    dongfeng = await api.login("dongfeng")
    resp = await api.client.get(f"/api/items/{secret['id']}", headers=dongfeng)
    assert resp.status == 200, await resp.text()


async def test_review_request_is_dated_when_made_and_counted_from_delivery(api: Api) -> None:
    import datetime as dt  # noqa: PLC0415

    from web.items.common import local_today  # noqa: PLC0415

    today = local_today()
    dongfeng = await api.login("dongfeng")
    item = await register(api, dongfeng, "QX-DFJD")
    iid = item["id"]
    await act(api, dongfeng, iid, "accept")
    await act(api, dongfeng, iid, "opinion", decision="不支持", legal_basis="《条例》第三十二条")
    tomorrow = today + dt.timedelta(days=1)
    late = await act(api, dongfeng, iid, "deliver", status=422, delivered_on=str(tomorrow))
    assert f"the day it is recorded, {today}" in late["error"]["message"]
    delivered = await act(api, dongfeng, iid, "deliver", delivered_on=str(today))
    assert delivered["due"]["what"] == "review_request"
    future = await act(api, dongfeng, iid, "review-request", status=422, at=str(tomorrow))
    assert f"field 'at' {tomorrow} is after today" in future["error"]["message"]
    requested = await act(api, dongfeng, iid, "review-request", at=str(today))
    assert requested["state"] == "review_requested"
    history = await (await api.client.get(f"/api/items/{iid}/history", headers=dongfeng)).json()
    assert [h["type"] for h in history["history"]][-2:] == ["deliver", "request_review"]


async def test_review_is_by_the_organ_one_level_up(api: Api) -> None:
    from records.enums import Role  # noqa: PLC0415
    from tests.helpers import PASSWORD  # noqa: PLC0415

    units = api.seed.units
    async with api.seed.store.transaction() as tx:
        await accounts.create_account(
            tx, "heping", "Heping", PASSWORD, units["QX-DFJD-HPSQ"], [Role.RECEPTION]
        )
    heping = await api.login("heping")
    item = await register(api, heping, "QX-DFJD-HPSQ")
    iid = item["id"]
    await act(api, heping, iid, "accept")
    await act(api, heping, iid, "opinion", decision="解释说明", legal_basis="《条例》第三十二条")
    await act(api, heping, iid, "review-request")
    history = await (await api.client.get(f"/api/items/{iid}/history", headers=heping)).json()
    assert history["history"][-1]["data"]["reviewing_unit_id"] == units["QX-DFJD"]
    own = await act(
        api, heping, iid, "review-opinion", status=422, decision="维持", legal_basis="第三十五条"
    )
    assert f"review is by unit {units['QX-DFJD']}" in own["error"]["message"]
    dongfeng = await api.login("dongfeng")
    done = await act(
        api, dongfeng, iid, "review-opinion", decision="维持", legal_basis="第三十五条"
    )
    assert done["state"] == "review_opinion"
    await act(api, heping, iid, "rereview-request")
    history = await (await api.client.get(f"/api/items/{iid}/history", headers=heping)).json()
    assert history["history"][-1]["data"]["reviewing_unit_id"] == units["QX"]


async def test_transfer_out_of_the_district_names_the_organ(api: Api) -> None:
    reception = await api.login("reception")
    item = await register(api, reception, "QX-XFJ-JDZX")
    bad = await act(api, reception, item["id"], "transfer-out", status=422, organ="区法院")
    assert "organ_kind" in bad["error"]["message"]
    out = await act(
        api,
        reception,
        item["id"],
        "transfer-out",
        organ="市中级人民法院",
        organ_kind="court",
        reason="已进入诉讼程序",
    )
    assert (out["state"], out["state_label"], out["allowed_actions"]) == (
        "transferred_out",
        "已转送区外机关",
        ["note"],
    )
    history = await (
        await api.client.get(f"/api/items/{item['id']}/history", headers=reception)
    ).json()
    assert history["history"][-1]["data"]["organ"] == "市中级人民法院"
