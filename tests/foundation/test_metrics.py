"""/metrics: exact numbers, escaped labels, typed counters, and what the hub and HTTP edge count."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import Api
from web.metrics import Metrics


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` whose labels include ``labels``; 0 when absent."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def _scrape(api: Api, headers: dict[str, str]) -> str:
    resp = await api.client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/plain"
    return await resp.text()


def test_a_large_value_prints_exactly() -> None:
    metrics = Metrics()
    metrics.watch_hub({"ws_messages": 123_456_789}, lambda: {"gateway_rooms": 12_345_678})
    text = metrics.render().decode()
    # the old exporter's {:g} printed 1.23457e+07: six digits, the rest lost
    assert _sample(text, "gateway_rooms") == 12_345_678
    assert _sample(text, "gateway_ws_messages_total", type="unparsed") == 123_456_789
    assert "1.23457e+07" not in text


def test_label_values_are_escaped() -> None:
    nasty = 'a "quoted"\nline \\ end'
    metrics = Metrics()
    metrics.watch_hub(
        {},
        lambda: {"gateway_peer_fps": {(("session", nasty), ("participant", "p1")): 29.5}},
    )
    text = metrics.render().decode()
    escaped = 'session="a \\"quoted\\"\\nline \\\\ end"'
    assert f'gateway_peer_fps{{participant="p1",{escaped}}} 29.5' in text
    assert _sample(text, "gateway_peer_fps", session=nasty, participant="p1") == 29.5
    assert len([line for line in text.splitlines() if line.startswith("gateway_peer_fps")]) == 1


def test_counters_are_declared_counters() -> None:
    metrics = Metrics()
    metrics.watch_hub({"ws_messages": 2, "ws_message.ping": 2, "ws_error_bad_json": 1}, dict)
    families = _families(metrics.render().decode())
    for name in ("gateway_ws_messages", "gateway_ws_errors", "gateway_http_requests"):
        assert families[name].type == "counter", name
    assert families["gateway_join_seconds"].type == "histogram"


def test_each_app_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.http_requests.labels("GET", "/healthz", "200").inc()
    text = two.render().decode()
    assert _sample(text, "gateway_http_requests_total", route="/healthz") == 0
    # neither registers with the library's global registry: a third app builds without a clash
    Metrics()


async def test_ws_errors_count_by_code(api_sqlite: Api) -> None:
    api = api_sqlite
    admin = await api.login("bureau_admin")
    before = await _scrape(api, admin)
    ws = await api.client.ws_connect("/ws")
    await ws.send_str("{not json")
    assert (await ws.receive_json())["code"] == "bad_json"
    await ws.send_json({"type": "session.join", "id": "1", "session": "abc"})
    assert (await ws.receive_json())["code"] == "unauthenticated"
    await ws.close()
    after = await _scrape(api, admin)
    for code in ("bad_json", "unauthenticated"):
        assert _sample(after, "gateway_ws_errors_total", code=code) == (
            _sample(before, "gateway_ws_errors_total", code=code) + 1
        ), code
    assert _sample(after, "gateway_ws_messages_total", type="session.join") == 1
    assert _sample(after, "gateway_ws_messages_total", type="unparsed") >= 1


async def test_hello_and_join_to_ack_are_timed(api_sqlite: Api) -> None:
    api = api_sqlite
    mediator = await api.ws(headers=await api.login("mediator"))
    created = await mediator.call("session.create", kind="mediation", title="邻里纠纷调解")
    await mediator.call("session.join", session=created["session"]["id"])
    refused = await mediator.request({"type": "session.join", "session": "no-such-session"})
    assert refused["type"] == "error"
    await mediator.close()
    text = await _scrape(api, await api.login("bureau_admin"))
    assert _sample(text, "gateway_join_seconds_count", type="hello") == 1
    assert 0 < _sample(text, "gateway_join_seconds_sum", type="hello") < 5
    # a refused join is an error, not a join: only the one acknowledged is timed
    assert _sample(text, "gateway_join_seconds_count", type="session.join") == 1
    assert _sample(text, "gateway_join_seconds_bucket", type="session.join", le="+Inf") == 1


async def test_http_requests_count_by_route_template(api_sqlite: Api) -> None:
    api = api_sqlite
    admin = await api.login("bureau_admin")
    assert (await api.client.get("/api/sessions/no-such-session", headers=admin)).status == 404
    assert (await api.client.get("/api/no/such/route", headers=admin)).status == 404
    assert (await api.client.request("PROPFIND", "/healthz")).status == 405
    text = await _scrape(api, admin)
    assert (
        _sample(
            text,
            "gateway_http_requests_total",
            method="GET",
            route="/api/sessions/{session_id}",
            status="404",
        )
        == 1
    )
    assert _sample(text, "gateway_http_requests_total", route="unmatched", status="404") == 1
    assert _sample(text, "gateway_http_requests_total", route="/api/login", status="200") == 1
    # a method the app never routes (WebDAV here) cannot grow the label set
    assert _sample(text, "gateway_http_requests_total", method="other", status="405") == 1
    assert _sample(text, "gateway_http_requests_total", method="PROPFIND") == 0
