"""Annual report over N petition items on SQLite and PostgreSQL.

    python bench/stats.py --items 1000000 --backend both

Generates N items (all registered in the report year, the worst case for the report) plus a
transfer for every third item and, for every twentieth, a history with an event in January
of the next year (so the default report, as of the end of the year, re-reads those 5 % from
their history; ``--changed-every`` sets the share), bulk-loaded (sqlite3 executemany in one
transaction; asyncpg COPY for PostgreSQL), then times ``records.statistics.annual_report``
for the district (all units), for a subtree of units, and as of now (nothing changed since).
Baselines measured in the same run: the generation/load time and a bare ``SELECT count(*)``
over the period. Ends with one ``BENCH stats`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine  # noqa: E402

import records.item_models as im  # noqa: E402
from records.base import Base  # noqa: E402
from records.statistics import annual_report  # noqa: E402

ITEM_TABLES = [im.ItemRow.__table__, im.ItemTransfer.__table__, im.ItemEvent.__table__]
YEAR_START = dt.datetime(2023, 12, 31, 16, tzinfo=dt.UTC)  # 2024-01-01 00:00 Beijing
CHANNELS = ["letter", "visit", "online", "phone", "fax", "video"]
CHANNEL_W = [10, 30, 40, 10, 1, 9]
PLATFORMS = ["人民网领导留言板", "国家信访平台", "省长信箱", "市长信箱", "区领导信箱", "问政平台"]
STATES = ["registered", "transferred", "received", "accepted", "opinion_issued", "concluded",
          "diverted", "not_accepted"]  # fmt: skip
STATE_W = [2, 3, 2, 8, 10, 70, 3, 2]
CATEGORIES = ["城乡建设", "劳动社保", "自然资源", "卫生健康", "教育", "政法", "农村农业",
              "交通运输", "商贸旅游", "市场监管", "生态环境", "民政应急"]  # fmt: skip
LEVELS = [None, "central", "provincial", "municipal"]
LEVEL_W = [85, 3, 5, 7]
UNITS = 300
ALPHA = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

ITEM_COLS = [
    "id", "lookup_code", "rule_set", "state", "version", "type", "category", "request", "facts",
    "reasons", "channel", "online_platform", "origin_level", "led_by_other_unit", "urgent",
    "major", "confidential", "anonymous", "is_group", "registering_unit_id", "handling_unit_id",
    "subject_unit_id", "registered_at", "resolved", "accepted_on_time", "opinion_on_time",
    "eval_handling", "created_at",
]  # fmt: skip
TRANSFER_COLS = ["item_id", "kind", "from_unit_id", "to_unit_id", "at"]
EVENT_COLS = ["item_id", "seq", "at", "type", "from_state", "to_state", "reason", "data"]
LATE = YEAR_START + dt.timedelta(days=366 + 9)  # 2025-01-10, after the report year


def code(i: int) -> str:
    out = []
    for _ in range(10):
        i, r = divmod(i, 31)
        out.append(ALPHA[r])
    return "".join(out)


Rows = list[tuple[Any, ...]]


def generate(
    n: int, seed: int, changed_every: int = 20, chunk: int = 50_000
) -> Iterator[tuple[Rows, Rows, Rows]]:
    rnd = random.Random(seed)
    year_minutes = 366 * 24 * 60
    for base in range(0, n, chunk):
        k = min(chunk, n - base)
        channels = rnd.choices(CHANNELS, CHANNEL_W, k=k)
        states = rnd.choices(STATES, STATE_W, k=k)
        levels = rnd.choices(LEVELS, LEVEL_W, k=k)
        cats = rnd.choices(CATEGORIES, k=k)
        units = [rnd.randrange(1, UNITS) for _ in range(k)]
        minutes = [rnd.randrange(year_minutes) for _ in range(k)]
        rs = [rnd.random() for _ in range(k)]
        items = []
        transfers = []
        events = []
        for j in range(k):
            i = base + j
            at = YEAR_START + dt.timedelta(minutes=minutes[j])
            r = rs[j]
            handled = states[j] in ("opinion_issued", "concluded")
            item_id = f"{i:032x}"
            items.append(
                (
                    item_id, code(i), "2022", states[j], 1,
                    "complaint" if r < 0.8 else ("suggestion" if r < 0.9 else "accusation"),
                    cats[j] if r > 0.002 else None, "r", "", "",
                    channels[j],
                    PLATFORMS[i % len(PLATFORMS)] if channels[j] == "online" else None,
                    levels[j], r < 0.05, False, False, r > 0.9, False, r < 0.01,
                    units[j], units[j], (i % 40) + 1 if r < 0.7 else None,
                    at, r < 0.6,
                    None if states[j] in ("registered", "transferred", "received") else r < 0.97,
                    (r < 0.95) if handled else None,
                    (r < 0.93) if handled and r < 0.99 else None,
                    at,
                )
            )  # fmt: skip
            if i % 3 == 0:
                transfers.append(
                    (item_id, "assign" if levels[j] else "transfer", units[j], 400, at)
                )
            if changed_every and i % changed_every == 0:
                events.append((item_id, 1, at, "register", None, states[j], "", "{}"))
                late = LATE + dt.timedelta(minutes=i % 1000)
                events.append((item_id, 2, late, "evaluate", states[j], states[j], "", "{}"))
        yield items, transfers, events


def sqlite_value(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        # What SQLAlchemy's SQLite DateTime stores for UTCDateTime: naive UTC text.
        return v.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


def load_sqlite(path: Path, n: int, seed: int, changed_every: int) -> float:
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine, tables=ITEM_TABLES)
    engine.dispose()
    t0 = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    item_sql = (
        f"INSERT INTO item_items ({','.join(ITEM_COLS)}) VALUES ({','.join('?' * len(ITEM_COLS))})"
    )
    tr_sql = f"INSERT INTO item_transfers ({','.join(TRANSFER_COLS)}) VALUES (?,?,?,?,?)"
    ev_sql = f"INSERT INTO item_events ({','.join(EVENT_COLS)}) VALUES (?,?,?,?,?,?,?,?)"
    with con:
        for items, transfers, events in generate(n, seed, changed_every):
            con.executemany(item_sql, ([sqlite_value(v) for v in row] for row in items))
            con.executemany(tr_sql, ([sqlite_value(v) for v in row] for row in transfers))
            con.executemany(ev_sql, ([sqlite_value(v) for v in row] for row in events))
    con.execute("ANALYZE")
    con.close()
    return time.perf_counter() - t0


async def load_postgres(url: str, schema: str, n: int, seed: int, changed_every: int) -> float:
    import asyncpg

    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=ITEM_TABLES))
    await engine.dispose()
    t0 = time.perf_counter()
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    con = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        for items, transfers, events in generate(n, seed, changed_every):
            await con.copy_records_to_table("item_items", records=items, columns=ITEM_COLS)
            await con.copy_records_to_table(
                "item_transfers", records=transfers, columns=TRANSFER_COLS
            )
            await con.copy_records_to_table("item_events", records=events, columns=EVENT_COLS)
        await con.execute("ANALYZE item_items; ANALYZE item_transfers; ANALYZE item_events")
    finally:
        await con.close()
    return time.perf_counter() - t0


async def time_report(engine: AsyncEngine, runs: int) -> dict[str, float]:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    start, end = dt.date(2024, 1, 1), dt.date(2025, 1, 1)
    subtree = list(range(1, 40))
    out: dict[str, float] = {}
    async with sessions() as s:
        t0 = time.perf_counter()
        count = await s.scalar(
            select(func.count()).where(
                im.ItemRow.registered_at >= YEAR_START,
                im.ItemRow.registered_at < YEAR_START + dt.timedelta(days=366),
            )
        )
        out["count_s"] = time.perf_counter() - t0
        timings = []
        cpu = []
        report = None
        for _ in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            report = await annual_report(s, start=start, end=end)
            timings.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out["report_s"] = statistics.median(timings)
        out["report_first_s"] = timings[0]
        # CPU of this process: SQLite runs in it (PostgreSQL's work is in the server), so on a
        # shared, loaded machine this is the figure that does not depend on the neighbours.
        out["report_cpu_s"] = statistics.median(cpu)
        t0 = time.perf_counter()
        sub = await annual_report(s, start=start, end=end, unit_ids=subtree)
        out["subtree_report_s"] = time.perf_counter() - t0
        now = []
        for _ in range(runs):
            t0 = time.perf_counter()
            await annual_report(s, start=start, end=end, as_of=dt.datetime.now(dt.UTC))
            now.append(time.perf_counter() - t0)
        out["report_now_s"] = statistics.median(now)
    assert report is not None
    print(
        f"    as of {report.as_of.isoformat()}: "
        f"received={report.received} (count(*)={count}) concluded={report.concluded} "
        f"completion={report.completion_rate} satisfaction={report.satisfaction_rate} "
        f"transfers={report.transfers} assignments={report.assignments}"
    )
    print(f"    mismatches shown: {list(report.mismatches)}")
    print(f"    subtree of {len(subtree)} units: received={sub.received}")
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument(
        "--changed-every",
        type=int,
        default=20,
        help="every k-th item has an event after the report year (0: none)",
    )
    ap.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "GATEWAY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = ap.parse_args()
    figures: dict[str, str] = {"items": str(args.items)}
    print(f"annual report over {args.items} items (all in 2024), {args.runs} runs, median")
    load1 = os.getloadavg()[0]
    print(f"  load average {load1:.1f} on {os.cpu_count()} CPUs (wall times grow with it)")
    figures["load1"] = f"{load1:.1f}"

    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "stats.db"
            gen = load_sqlite(path, args.items, args.seed, args.changed_every)
            print(f"  sqlite: generated+loaded in {gen:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
            engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
            try:
                t = await time_report(engine, args.runs)
            finally:
                await engine.dispose()
            print(
                f"  sqlite: count(*) {t['count_s']:.3f} s; report {t['report_s']:.3f} s "
                f"(first {t['report_first_s']:.3f} s, CPU {t['report_cpu_s']:.3f} s); "
                f"subtree report {t['subtree_report_s']:.3f} s; as of now {t['report_now_s']:.3f} s"
            )
            figures.update(
                sqlite_report_now_s=f"{t['report_now_s']:.3f}",
                sqlite_report_s=f"{t['report_s']:.3f}",
                sqlite_report_cpu_s=f"{t['report_cpu_s']:.3f}",
                sqlite_subtree_s=f"{t['subtree_report_s']:.3f}",
                sqlite_count_s=f"{t['count_s']:.3f}",
                sqlite_generate_s=f"{gen:.1f}",
            )

    if args.backend in ("postgres", "both"):
        schema = "bench_" + uuid.uuid4().hex[:10]
        engine = create_async_engine(
            args.postgres_url, connect_args={"server_settings": {"search_path": schema}}
        )
        try:
            gen = await load_postgres(
                args.postgres_url, schema, args.items, args.seed, args.changed_every
            )
            print(f"  postgres: generated+loaded (COPY) in {gen:.1f} s")
            t = await time_report(engine, args.runs)
            print(
                f"  postgres: count(*) {t['count_s']:.3f} s; report {t['report_s']:.3f} s "
                f"(first {t['report_first_s']:.3f} s); "
                f"subtree report {t['subtree_report_s']:.3f} s; as of now {t['report_now_s']:.3f} s"
            )
            figures.update(
                postgres_report_now_s=f"{t['report_now_s']:.3f}",
                postgres_report_s=f"{t['report_s']:.3f}",
                postgres_subtree_s=f"{t['subtree_report_s']:.3f}",
                postgres_count_s=f"{t['count_s']:.3f}",
                postgres_generate_s=f"{gen:.1f}",
            )
        finally:
            async with engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await engine.dispose()

    print("BENCH stats " + " ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    asyncio.run(main())
