"""Signaling hub under N concurrent WebSocket clients.

    python bench/signaling.py --clients 2000

Starts ``petition-gateway serve`` in a child process (SQLite in a temp dir, in-memory bus, no
media worker) after creating N community terminals and a training session in the database.
Then N clients connect: each says ``hello`` with its device credential and joins the training
as a viewer (``session.join``); the join → ack round trip is timed per client (at most
``--concurrency`` joins in flight, the rest queue up client-side, as a ramp-up would). Then every
client sends ``ping`` requests for ``--seconds`` s (messages per second = completed round trips
across all clients). Memory per idle client = the server's RSS with all N joined minus its RSS
before the first client, divided by N.

Baseline, same run and same clients: a bare aiohttp WebSocket server (child process) that
answers hello/join/ping with a canned reply — the cost of the transport alone.

The hub's CPU time is reported per hello+join of the ramp (``cpu_per_hello_join_ms``, which
includes the keep-alive pings of the clients already joined) and per rejoin (leave + join) of
the steady phase (``cpu_per_rejoin_ms``): on a shared machine these vary less than latencies.

Ends with ``BENCH signaling clients=.. join_p50_ms=.. join_p99_ms=.. msgs_per_s=..
mem_per_client_kb=.. cpu_per_hello_join_ms=.. cpu_per_rejoin_ms=..``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-secret-" + "z" * 40


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ---- the baseline server (a child process) -----------------------------------------------------


def echo_server(port: int) -> None:
    from aiohttp import web

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                req = json.loads(msg.data)
                await ws.send_str(json.dumps({"type": "result", "id": req.get("id"), "data": {}}))
        return ws

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# ---- setup ---------------------------------------------------------------------------------


async def seed(db_url: str, n: int) -> tuple[list[str], str]:
    """N terminals spread over the example communities, and one training for all of them."""
    from records import accounts, sessions
    from records.enums import Role, SessionKind, UnitLevel
    from records.store import Store
    from tests.helpers import EXAMPLE_ORGS

    store = Store(db_url)
    await store.start(migrate=True)
    await store.import_org_file(EXAMPLE_ORGS)
    communities = [u.id for u in store.tree.units.values() if u.level is UnitLevel.COMMUNITY]
    district = store.tree.by_code["QX"].id
    credentials = []
    async with store.transaction() as tx:
        trainer = await accounts.create_account(
            tx, "trainer", "Trainer", "correct horse battery", district, (Role.TRAINER,)
        )
        for i in range(n):
            _t, cred = await accounts.create_terminal(
                tx, f"kiosk {i}", communities[i % len(communities)]
            )
            credentials.append(cred)
        s = await sessions.create_session(
            tx,
            kind=SessionKind.TRAINING,
            unit_id=district,
            title="bench",
            convener_account_id=trainer.id,
        )
    await store.close()
    return credentials, s.id


class Server:
    def __init__(self, args: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.proc.pid)

    async def ready(self) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                if self.proc.poll() is not None:
                    raise SystemExit(f"server exited:\n{self.log.read_text()[-3000:]}")
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise SystemExit("server did not come up")

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ---- the clients ----------------------------------------------------------------------------


class Client:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.n = 0
        self.last_sent = time.perf_counter()

    async def request(self, msg: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        rid = f"r{self.n}"
        self.last_sent = time.perf_counter()
        await self.ws.send_str(json.dumps({**msg, "id": rid}))
        while True:
            raw = await self.ws.receive()
            if raw.type is not aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"closed: {raw.type.name} {raw.data!r}")
            reply: dict[str, Any] = json.loads(raw.data)
            if reply.get("id") == rid:
                if reply["type"] != "result":
                    raise RuntimeError(f"{msg['type']} refused: {reply}")
                return reply


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def run_clients(
    port: int,
    credentials: list[str],
    session_id: str,
    concurrency: int,
    seconds: float,
    clients: list[Client] | None = None,
) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    http = aiohttp.ClientSession(connector=connector)
    clients = [] if clients is None else clients
    hello_ms: list[float] = []
    join_ms: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def connect(cred: str) -> None:
        async with gate:
            ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws", heartbeat=None)
            c = Client(ws)
            t0 = time.perf_counter()
            await c.request({"type": "hello", "token": cred})
            t1 = time.perf_counter()
            await c.request({"type": "session.join", "session": session_id})
            t2 = time.perf_counter()
            hello_ms.append((t1 - t0) * 1000)
            join_ms.append((t2 - t1) * 1000)
            clients.append(c)

    began = time.perf_counter()
    await asyncio.gather(*(connect(c) for c in credentials))
    connect_s = time.perf_counter() - began
    return {
        "http": http,
        "clients": clients,
        "hello_ms": hello_ms,
        "join_ms": join_ms,
        "connect_s": connect_s,
        "seconds": seconds,
    }


async def ping_storm(clients: list[Client], seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def loop(c: Client) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await c.request({"type": "ping"})
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in clients))
    return done / (time.perf_counter() - began)


async def steady_joins(
    clients: list[Client], session_id: str, rate: float, count: int
) -> tuple[list[float], float]:
    """With every client connected: ``count`` of them leave and join again, arriving at random.

    Open loop: arrivals are a Poisson process of ``rate`` per second whatever the hub's answers
    take (a closed loop of K requests in flight measures K times the service time instead).
    Returns each join's join → ack time (ms) and the achieved arrival rate.
    """
    rng = random.Random(7)
    chosen = rng.sample(clients, min(count, len(clients)))
    join_ms: list[float] = []

    async def one(c: Client) -> None:
        await c.request({"type": "session.leave", "session": session_id})
        t0 = time.perf_counter()
        await c.request({"type": "session.join", "session": session_id})
        join_ms.append((time.perf_counter() - t0) * 1000)

    tasks = []
    began = due = time.perf_counter()
    for c in chosen:
        due += rng.expovariate(rate)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(c)))
    offered = len(chosen) / (time.perf_counter() - began)
    await asyncio.gather(*tasks)
    return join_ms, offered


async def keep_alive(clients: list[Client], period: float, stop: asyncio.Event) -> None:
    """The protocol's app-level ping, so idle clients are not dropped by the heartbeat.

    Each client pings ``period`` s after it last sent something, as a real client's timer does:
    the pings are spread like the joins were. (Pinging every joined client at once each period
    made a burst of up to 2,000 messages every 5 s that no real population of clients sends,
    and the joins queued behind it.)
    """
    while not stop.is_set():
        now = time.perf_counter()
        for c in list(clients):
            if now - c.last_sent >= period and not c.ws.closed:
                c.last_sent = now
                await c.ws.send_str('{"type":"ping"}')
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def measure(
    label: str, server: Server, credentials: list[str], session_id: str, opts: argparse.Namespace
) -> dict[str, float]:
    await server.ready()
    # warm up the code paths (imports, first queries) with one client, then measure
    warm = await run_clients(server.port, credentials[:1], session_id, 1, 0)
    for c in warm["clients"]:
        await c.ws.close()
    await warm["http"].close()
    await asyncio.sleep(0.5)
    rss0 = server.rss()
    cpu0 = server.cpu_s()
    clients: list[Client] = []
    stop = asyncio.Event()
    # the protocol's ping every 5 s keeps joined clients inside the heartbeat while the
    # others are still joining (a ramp of 2,000 takes longer than the 15 s timeout)
    pinger = asyncio.create_task(keep_alive(clients, 5.0, stop))
    run = await run_clients(
        server.port, credentials[1:], session_id, opts.concurrency, opts.seconds, clients
    )
    await asyncio.sleep(2.0)  # let batched pushes settle
    rss1 = server.rss()
    cpu_join = server.cpu_s() - cpu0
    cpu1 = server.cpu_s()
    steady_ms, offered = await steady_joins(clients, session_id, opts.rate, opts.steady_joins)
    cpu_rejoin = server.cpu_s() - cpu1
    msgs = await ping_storm(clients, opts.seconds)
    stop.set()
    await pinger
    n = len(clients)
    out = {
        "clients": n,
        "connect_s": run["connect_s"],
        "hello_p50_ms": statistics.median(run["hello_ms"]),
        "hello_p99_ms": pct(run["hello_ms"], 99),
        "ramp_join_p50_ms": statistics.median(run["join_ms"]),
        "ramp_join_p99_ms": pct(run["join_ms"], 99),
        "join_p50_ms": statistics.median(steady_ms),
        "join_p99_ms": pct(steady_ms, 99),
        "join_max_ms": max(steady_ms),
        "join_rate": offered,
        "msgs_per_s": msgs,
        "mem_per_client_kb": (rss1 - rss0) / n / 1024,
        "server_cpu_per_join_ms": cpu_join / n * 1000,
        "server_cpu_per_rejoin_ms": cpu_rejoin / len(steady_ms) * 1000,
        "rss_mb": rss1 / 2**20,
    }
    print(
        f"{label:>9}: ramp: {n} clients joined in {out['connect_s']:.1f} s"
        f" ({n / out['connect_s']:.0f}/s, {opts.concurrency} in flight):"
        f" hello p50/p99 {out['hello_p50_ms']:.1f}/{out['hello_p99_ms']:.1f} ms,"
        f" join p50/p99 {out['ramp_join_p50_ms']:.1f}/{out['ramp_join_p99_ms']:.1f} ms;"
        f" then {len(steady_ms)} rejoins at {out['join_rate']:.0f}/s with all {n} connected:"
        f" join p50/p99/max {out['join_p50_ms']:.1f}/{out['join_p99_ms']:.1f}"
        f"/{out['join_max_ms']:.1f} ms;"
        f" {out['msgs_per_s']:.0f} pings/s; {out['mem_per_client_kb']:.1f} KB per idle client"
        f" (RSS {out['rss_mb']:.0f} MB);"
        f" server CPU per hello+join {out['server_cpu_per_join_ms']:.2f} ms,"
        f" per rejoin (leave+join) {out['server_cpu_per_rejoin_ms']:.2f} ms",
        flush=True,
    )
    for c in clients:
        await c.ws.close()
    await run["http"].close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20, help="joins in flight")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the ping storm")
    parser.add_argument(
        "--rate", type=float, default=100.0, help="rejoins per second once all are connected"
    )
    parser.add_argument("--steady-joins", type=int, default=1000, help="rejoins measured")
    parser.add_argument("--no-baseline", action="store_true")
    opts = parser.parse_args()
    limit = raise_fd_limit()
    if limit < opts.clients * 2 + 100:
        raise SystemExit(f"open-files limit {limit} is too low for {opts.clients} clients")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        db_url = f"sqlite+aiosqlite:///{tmpdir / 'bench.db'}"
        t0 = time.perf_counter()
        credentials, session_id = await seed(db_url, opts.clients + 1)
        print(
            f"seeded {opts.clients + 1} terminals in {time.perf_counter() - t0:.1f} s", flush=True
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "GATEWAY_DATABASE_URL": db_url,
                "GATEWAY_DATA_DIR": str(tmpdir / "data"),
                "GATEWAY_MEDIA_IN_PROCESS_WORKER": "false",
                "GATEWAY_SECURITY_SECRET_KEY": SECRET,
                "GATEWAY_SERVER_LOG_LEVEL": "WARNING",
            }
        )
        baseline = None
        if not opts.no_baseline:
            port = free_port()
            base = Server(
                [sys.executable, __file__, "--echo-server", str(port)],
                env,
                port,
                tmpdir / "echo.log",
            )
            try:
                baseline = await measure("baseline", base, credentials, session_id, opts)
            finally:
                base.stop()
        port = free_port()
        env["GATEWAY_SERVER_PORT"] = str(port)
        hub = Server(
            [sys.executable, "-m", "gateway.cli", "serve", "--no-migrate"],
            env,
            port,
            tmpdir / "hub.log",
        )
        try:
            res = await measure("hub", hub, credentials, session_id, opts)
        finally:
            hub.stop()
        errors = [line for line in (tmpdir / "hub.log").read_text().splitlines() if "ERROR" in line]
        if errors:
            print("hub log errors:", *errors[:10], sep="\n  ")
    if baseline:
        print(
            f"hub vs bare WebSocket server: join p99 {res['join_p99_ms']:.1f} vs"
            f" {baseline['join_p99_ms']:.1f} ms, {res['msgs_per_s']:.0f} vs"
            f" {baseline['msgs_per_s']:.0f} msgs/s, {res['mem_per_client_kb']:.1f} vs"
            f" {baseline['mem_per_client_kb']:.1f} KB per client"
        )
    print(
        f"BENCH signaling clients={res['clients']} join_p50_ms={res['join_p50_ms']:.1f}"
        f" join_p99_ms={res['join_p99_ms']:.1f} msgs_per_s={res['msgs_per_s']:.0f}"
        f" mem_per_client_kb={res['mem_per_client_kb']:.1f}"
        f" join_rate={res['join_rate']:.0f}"
        f" ramp_join_p50_ms={res['ramp_join_p50_ms']:.1f}"
        f" ramp_join_p99_ms={res['ramp_join_p99_ms']:.1f}"
        f" hello_p99_ms={res['hello_p99_ms']:.1f}"
        f" cpu_per_hello_join_ms={res['server_cpu_per_join_ms']:.2f}"
        f" cpu_per_rejoin_ms={res['server_cpu_per_rejoin_ms']:.2f}"
        f" baseline_join_p99_ms={baseline['join_p99_ms'] if baseline else 0:.1f}"
        f" baseline_msgs_per_s={baseline['msgs_per_s'] if baseline else 0:.0f}"
        f" baseline_mem_per_client_kb={baseline['mem_per_client_kb'] if baseline else 0:.1f}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--echo-server":
        echo_server(int(sys.argv[2]))
    else:
        asyncio.run(main())
