"""The public side: progress by lookup code (no personal data) and satisfaction evaluation."""

from __future__ import annotations

import json

from records import accounts
from tests.api.items_api_support import PHONE, act, register
from tests.helpers import Api


async def _accepted_item(api: Api) -> dict[str, str]:
    reception = await api.login("reception")
    item = await register(
        api, reception, "QX-XFJ-JDZX", facts="秘密的事实细节", place="和平路1号院"
    )
    await act(api, reception, item["id"], "assign", to_unit_id=api.seed.units["QX-XFJ-JDZX"])
    await act(api, reception, item["id"], "acknowledge")
    await act(api, reception, item["id"], "accept")
    return item


async def test_progress_shows_the_timeline_and_no_personal_data(api_sqlite: Api) -> None:
    api = api_sqlite
    item = await _accepted_item(api)
    code = item["lookup_code"]
    # no login; any case, spaces instead of the dash
    resp = await api.client.get(
        "/api/public/progress", params={"code": code.lower().replace("-", " ")}
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["lookup_code"] == code
    assert body["state"] == "accepted"
    assert body["label"] == "已受理"
    assert [s["state"] for s in body["steps"]] == ["registered", "assigned", "received", "accepted"]
    assert body["due_on"] is not None
    assert body["can_evaluate_acceptance"] is True
    assert body["can_evaluate_handling"] is False
    raw = json.dumps(body, ensure_ascii=False)
    for personal in ("张三", "110101", PHONE, "和平路", "电梯", "秘密", item["id"]):
        assert personal not in raw
    resp = await api.client.get("/api/public/progress", params={"code": "23456-78923"})
    assert resp.status in (404, 422)


async def test_evaluation_and_wrong_digits_answer_like_a_wrong_code(api_sqlite: Api) -> None:
    api = api_sqlite
    item = await _accepted_item(api)
    code = item["lookup_code"]
    other = await register(api, await api.login("reception"), "QX-XFJ-JDZX")

    async def evaluate(**body: object) -> tuple[int, dict[str, object]]:
        resp = await api.client.post("/api/public/evaluate", json=body)
        return resp.status, await resp.json()

    wrong_digits = await evaluate(code=code, phone_last4="1234", stage="acceptance", satisfied=True)
    # a real, well-formed code of another item whose phone ends differently is also "wrong"
    wrong_code = await evaluate(
        code=other["lookup_code"], phone_last4="1234", stage="acceptance", satisfied=True
    )
    malformed = await evaluate(
        code="ABCDE-FGHJK", phone_last4="8000", stage="acceptance", satisfied=True
    )
    assert wrong_digits == wrong_code == malformed
    assert wrong_digits[0] == 404

    status, body = await evaluate(code=code, phone_last4="8000", stage="handling", satisfied=True)
    assert status == 422  # handling cannot be rated before the opinion
    status, body = await evaluate(
        code=code, phone_last4="8000", stage="acceptance", satisfied=False
    )
    assert status == 200, body
    assert body["can_evaluate_acceptance"] is False
    status, body = await evaluate(code=code, phone_last4="8000", stage="acceptance", satisfied=True)
    assert status == 409  # rated once only
    reception = await api.login("reception")
    fresh = await (await api.client.get(f"/api/items/{item['id']}", headers=reception)).json()
    assert fresh["evaluation"] == {
        "acceptance": False,
        "handling": None,
        "acceptance_recorded_by": None,  # the petitioner rated, not staff
        "handling_recorded_by": None,
    }
    async with api.seed.store.transaction() as tx:
        log = await accounts.audit_entries(tx, action="evaluate")
    assert sorted(e.outcome for e in log) == ["failed", "failed", "failed", "ok"]


async def test_repeated_failed_evaluations_are_throttled(api_sqlite: Api) -> None:
    api = api_sqlite
    item = await _accepted_item(api)
    statuses = []
    for n in range(12):
        resp = await api.client.post(
            "/api/public/evaluate",
            json={
                "code": item["lookup_code"],
                "phone_last4": f"{n:04d}",
                "stage": "acceptance",
                "satisfied": True,
            },
        )
        statuses.append(resp.status)
    assert statuses[0] == 404
    assert statuses[-1] == 429
    # even the right digits are refused while the code is locked
    resp = await api.client.post(
        "/api/public/evaluate",
        json={
            "code": item["lookup_code"],
            "phone_last4": "8000",
            "stage": "acceptance",
            "satisfied": True,
        },
    )
    assert resp.status == 429
