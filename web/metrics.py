"""Prometheus metrics of one application, on ``prometheus_client``.

Each app owns its own :class:`~prometheus_client.CollectorRegistry` (never the library's
global default registry, so two apps in one test process do not share a counter). It holds:

- ``gateway_http_requests_total{method,route,status}``: every HTTP answer, counted by
  :meth:`Metrics.middleware`; ``route`` is the route's template (``/api/sessions/{id}``), not
  the path, so the label set stays bounded.
- ``gateway_join_seconds{type}``: hello or ``session.join`` until its ``result`` is queued.
- through :class:`HubCollector`, read from the hub at scrape time: the WebSocket counters
  (``gateway_ws_messages_total{type}``, ``gateway_ws_errors_total{code}``) and the gauges
  (connections, members, rooms, each connected peer's last media statistics as
  ``gateway_peer_fps{session,participant}`` and its siblings).

``prometheus_client`` writes the exposition text: label values escaped, counters typed as
counters, and values printed with every digit (12345678 is ``1.2345678e+07``, as Prometheus'
own Go clients print it; never rounded to six digits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: the Content-Type of what generate_latest writes: the classic text format, version 0.0.4
#: (newer prometheus_client versions call it CONTENT_TYPE_PLAIN_0_0_4; 0.21 does not have it)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: join → ack buckets in seconds around the target (p99 ≤ 10 ms at 500 joins/s)
JOIN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

#: the route label of a request no route matched (a 404), so scanners cannot grow the label set
UNMATCHED = "unmatched"
#: methods counted under their own name; any other (a scanner's invention) counts as ``other``
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: HELP text of the hub's gauges; a gauge not listed here is described by its name
GAUGE_HELP = {
    "gateway_ws_connections": "WebSocket clients connected to this hub",
    "gateway_members": "participants present in a room on this hub",
    "gateway_rooms": "rooms with members on this hub",
    "gateway_peer_bitrate_kbps": "a peer's last reported receive bitrate (kbit/s)",
    "gateway_peer_fps": "a peer's last reported frames per second",
    "gateway_peer_packets_lost": "a peer's last reported packets lost",
    "gateway_peer_rtt_ms": "a peer's last reported round-trip time (ms)",
}

#: hub counter keys (signaling.hub.Hub.counters) this module turns into labelled counters
WS_MESSAGES_KEY = "ws_messages"  # every frame read, parsed or not
WS_MESSAGE_PREFIX = "ws_message."  # frames parsed, by message type
WS_ERROR_PREFIX = "ws_error_"  # error replies and events sent, by wire code

#: the type label of frames that never became a message (refused by the rate limit, too
#: large, not JSON, an unknown type)
UNPARSED = "unparsed"

#: ``{gauge name: value or {((label, value), ...): value}}``, read at scrape time
Gauges = Mapping[str, Any]


class HubCollector(Collector):
    """Reads the hub's counters and gauges at scrape time.

    Args:
        counters: the hub's monotonic counters by key (``Hub.counters``).
        gauges: returns the hub's gauges (``Hub.gauges``).
    """

    def __init__(self, counters: Mapping[str, int], gauges: Callable[[], Gauges]) -> None:
        self._counters = counters
        self._gauges = gauges

    def describe(self) -> Iterable[Metric]:
        # nothing to check at registration: the names are fixed, the samples come at scrape time
        return ()

    def collect(self) -> Iterable[Metric]:
        counters = dict(self._counters)  # one consistent copy
        messages = CounterMetricFamily(
            "gateway_ws_messages", "WebSocket messages received, by type", labels=["type"]
        )
        parsed = 0
        for key, value in sorted(counters.items()):
            if key.startswith(WS_MESSAGE_PREFIX):
                messages.add_metric([key.removeprefix(WS_MESSAGE_PREFIX)], value)
                parsed += value
        unparsed = counters.get(WS_MESSAGES_KEY, 0) - parsed
        if unparsed > 0:
            messages.add_metric([UNPARSED], unparsed)
        yield messages
        errors = CounterMetricFamily(
            "gateway_ws_errors",
            "WebSocket error replies and events sent, by wire error code",
            labels=["code"],
        )
        for key, value in sorted(counters.items()):
            if key.startswith(WS_ERROR_PREFIX):
                errors.add_metric([key.removeprefix(WS_ERROR_PREFIX)], value)
        yield errors
        for name, value in sorted(self._gauges().items()):
            yield _gauge(name, value)


def _gauge(name: str, value: Any) -> GaugeMetricFamily:
    text = GAUGE_HELP.get(name, name)
    if not isinstance(value, Mapping):
        return GaugeMetricFamily(name, text, value=float(value))
    series: Mapping[tuple[tuple[str, str], ...], float] = value
    names = [k for k, _ in next(iter(series), ())]
    family = GaugeMetricFamily(name, text, labels=names)
    for labels, v in series.items():
        family.add_metric([str(v_) for _, v_ in labels], float(v))
    return family


class Metrics:
    """The registry of one app and the instruments the HTTP edge and the hub feed."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "gateway_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.join_seconds = Histogram(
            "gateway_join_seconds",
            "hello or session.join until its result is queued (seconds)",
            ["type"],
            buckets=JOIN_BUCKETS,
            registry=self.registry,
        )
        #: counts every HTTP answer; put it first in the app's middlewares, outside the others
        self.middleware: Middleware = _request_counter(self.http_requests)

    def observe_join(self, message_type: str, seconds: float) -> None:
        """Record one hello or join answered in ``seconds``."""
        self.join_seconds.labels(message_type).observe(seconds)

    def watch_hub(self, counters: Mapping[str, int], gauges: Callable[[], Gauges]) -> None:
        """Export a hub's counters and gauges (see :class:`HubCollector`)."""
        self.registry.register(HubCollector(counters, gauges))

    def render(self) -> bytes:
        """The exposition text of everything registered."""
        return generate_latest(self.registry)


def _request_counter(counter: Counter) -> Middleware:
    def count(request: web.Request, status: int) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else UNMATCHED
        method = request.method if request.method in METHODS else "other"
        counter.labels(method, route, str(status)).inc()

    @web.middleware
    async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            count(request, exc.status)
            raise
        except Exception:
            count(request, 500)  # what the client gets for anything but an HTTP answer
            raise
        # (a cancelled request, a client gone, answers nobody: not counted)
        count(request, response.status)
        return response

    return count_requests
