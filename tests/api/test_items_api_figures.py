"""Each figure of /api/stats links to the records it counts, in the reader's scope."""

from __future__ import annotations

from records.base import utcnow
from records.deadlines import local_date
from tests.api.items_api_support import act, register
from tests.helpers import Api


async def test_every_figure_links_to_its_records_and_confidential_ones_are_withheld(
    api_sqlite: Api,
) -> None:
    api = api_sqlite
    units = api.seed.units
    heping = await api.login("heping_agent")
    made = [
        await register(api, heping, "QX-DFJD-HPSQ", channel="visit"),
        await register(api, heping, "QX-DFJD-HPSQ", channel="letter"),
        await register(
            api,
            heping,
            "QX-DFJD-HPSQ",
            channel="letter",
            type="accusation",
            subject_unit_id=units["QX-ZJJ"],
        ),
    ]
    reception = await api.login("reception")
    await act(api, reception, made[0]["id"], "not-accept", reason="重复信访")
    year = local_date(utcnow()).year
    leader = await api.login("leader")
    stats = await (await api.client.get(f"/api/stats?year={year}", headers=leader)).json()
    links = stats["links"]
    assert links["received"].startswith("/api/stats/records?figure=received&start=")
    for figure, expected in (
        ("received", stats["received"]),
        ("closed_otherwise", stats["closed_otherwise"]),
        ("in_progress", stats["in_progress"]),
        ("channel:letter", stats["by_channel"]["counts"]["letter"]),
    ):
        resp = await api.client.get(links[figure], headers=leader)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["count"] == expected, figure
        assert body["withheld"] + len(body["records"]) == expected, figure
    closed = await (await api.client.get(links["closed_otherwise"], headers=leader)).json()
    assert [(r["lookup_code"], r["state_label"]) for r in closed["records"]] == [
        (made[0]["lookup_code"], "不予受理")
    ]
    # the accusation is counted but not named to a reader who does not handle it (Art. 30)
    letters = await (await api.client.get(links["channel:letter"], headers=leader)).json()
    listed = {r["lookup_code"] for r in letters["records"]}
    assert made[1]["lookup_code"] in listed
    if letters["withheld"]:
        assert made[2]["lookup_code"] not in listed

    # a community outside the reader's scope: refused; a figure nobody knows: named
    binhe = await api.login("binhe_agent")
    outside = await api.client.get(
        f"/api/stats/records?year={year}&figure=received&unit_id={units['QX-DFJD-HPSQ']}",
        headers=binhe,
    )
    assert outside.status == 403
    bad = await api.client.get(f"/api/stats/records?year={year}&figure=recieved", headers=leader)
    assert bad.status == 422
    assert "unknown report figure 'recieved'" in (await bad.json())["error"]["message"]


async def test_the_printable_report_links_each_count_to_its_records(api_sqlite: Api) -> None:
    api = api_sqlite
    heping = await api.login("heping_agent")
    await register(api, heping, "QX-DFJD-HPSQ", channel="letter")
    year = local_date(utcnow()).year
    leader = await api.login("leader")
    html = await (await api.client.get(f"/api/stats/report?year={year}", headers=leader)).text()
    start = f"start={year}-01-01&amp;end={year + 1}-01-01"
    assert f'<a href="/items?figure=received&amp;{start}">1</a>' in html
    assert f'<a href="/items?figure=channel%3Aletter&amp;{start}">1</a>' in html
    assert f'<a href="/items?figure=supervision&amp;{start}">0</a>' in html
