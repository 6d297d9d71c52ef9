"""部分办结 and 已上报待确认 over HTTP: the handling unit answers part, reports; the assigning
body confirms or sends the report back, and nobody else does."""

from __future__ import annotations

from tests.api.items_api_support import act, register
from tests.helpers import Api

OPINION = {"decision": "补贴已核定，月内发放", "legal_basis": "《加装电梯补贴办法》第五条"}


async def test_part_answer_report_return_and_confirmation(api: Api) -> None:
    units = api.seed.units
    reception = await api.login("reception")
    housing = await api.login("housing")
    item = await register(api, reception, "QX-XFJ-JDZX")
    iid = item["id"]
    await act(api, reception, iid, "assign", to_unit_id=units["QX-ZJJ"], due="2099-01-31")
    await act(api, housing, iid, "acknowledge")
    accepted = await act(api, housing, iid, "accept")
    opinion_due = accepted["due"]

    part = await act(
        api, housing, iid, "part-conclude", decision="补贴金额已答复，发放时间另行答复"
    )
    assert (part["state"], part["state_label"]) == ("part_concluded", "部分办结")
    # still the handling period from the acceptance (and the assignment's report date)
    assert part["due"] == opinion_due
    assert "opinion" in part["allowed_actions"]
    refused = await act(api, housing, iid, "conclude", status=409)
    assert refused["error"]["state"] == "part_concluded"

    await act(api, housing, iid, "opinion", **OPINION)
    reported = await act(api, housing, iid, "report", report="已办结，补贴已发放")
    assert (reported["state"], reported["state_label"]) == ("reported", "已上报待确认")
    assert reported["due"]["what"] == "review_request"  # the petitioner's window runs on
    assert {"confirm", "return-report", "review-request"} <= set(reported["allowed_actions"])

    # the unit that reported does not confirm its own report
    own = await act(api, housing, iid, "confirm", status=403, petitioner_waived=True)
    assert "confirmed by the assigning body" in own["error"]["message"]
    back = await act(api, reception, iid, "return-report", reason="未附发放凭证")
    assert back["state"] == "opinion_issued"
    await act(api, housing, iid, "report", report="已补充发放凭证")
    # confirming concludes: not while the petitioner may still ask for a review
    early = await act(api, reception, iid, "confirm", status=422)
    assert "may still ask for a review" in early["error"]["message"]
    done = await act(api, reception, iid, "confirm", petitioner_waived=True)
    assert (done["state"], done["state_label"]) == ("concluded", "已办结")

    history = await (await api.client.get(f"/api/items/{iid}/history", headers=reception)).json()
    assert [h["type"] for h in history["history"]][-6:] == [
        "conclude_part",
        "issue_opinion",
        "report",
        "return_report",
        "report",
        "confirm",
    ]


async def test_a_transferred_item_has_no_assigning_body_to_report_to(api: Api) -> None:
    reception = await api.login("reception")
    housing = await api.login("housing")
    item = await register(api, reception, "QX-XFJ-JDZX")
    await act(api, reception, item["id"], "transfer", to_unit_id=api.seed.units["QX-ZJJ"])
    await act(api, housing, item["id"], "acknowledge")
    await act(api, housing, item["id"], "accept")
    await act(api, housing, item["id"], "opinion", **OPINION)
    refused = await act(api, housing, item["id"], "report", status=422, report="已办结")
    assert "only an assigned (交办) item" in refused["error"]["message"]
    # from above the district: reported to that body
    above = await register(api, reception, "QX-XFJ-JDZX", origin_level="municipal")
    await act(api, reception, above["id"], "transfer", to_unit_id=api.seed.units["QX-ZJJ"])
    await act(api, housing, above["id"], "acknowledge")
    await act(api, housing, above["id"], "accept")
    await act(api, housing, above["id"], "opinion", **OPINION)
    reported = await act(api, housing, above["id"], "report", report="已办结")
    assert reported["state"] == "reported"
