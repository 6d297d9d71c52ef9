"""The officials' workbench routes over N items: the CSV export, a sorted page, the nav counts.

    python bench/workbench.py --items 2000 --runs 5

Registers N items (through ``records.items.register_item``, in one transaction) on a fresh
SQLite database (the embedded default) under the real app, then times over HTTP, as the
bureau's reception officer (who sees every item): the CSV export of the whole list
(``GET /api/items.csv``, at most 2,000 rows), one page of 20 sorted by deadline
(``GET /api/items?sort=due&order=asc&limit=20``), and the navigation's counts
(``GET /api/items/counts``, asked every minute by every officials' page). Baseline in the same
run: the JSON list of 500 items (``GET /api/items?limit=500``). Median of ``--runs``. Ends
with one ``BENCH workbench`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


async def _timed(client: Any, path: str, headers: dict[str, str], runs: int) -> tuple[float, int]:
    took: list[float] = []
    size = 0
    for _ in range(runs):
        start = time.perf_counter()
        resp = await client.get(path, headers=headers)
        body = await resp.read()
        took.append((time.perf_counter() - start) * 1000)
        if resp.status != 200:
            raise RuntimeError(f"{path}: {resp.status} {body[:200]!r}")
        size = len(body)
    return statistics.median(took), size


async def main(n: int, runs: int) -> None:
    from aiohttp.test_utils import TestClient, TestServer  # noqa: PLC0415

    from gateway.app import create_app  # noqa: PLC0415
    from records import items  # noqa: PLC0415
    from records.item_models import Channel, ItemType  # noqa: PLC0415
    from records.store import Store  # noqa: PLC0415
    from tests.helpers import PASSWORD, make_settings, seed_store  # noqa: PLC0415
    from web import keys  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/gateway.db"
        settings = make_settings(Path(tmp), url)
        store = Store(url)
        await store.start(migrate=True)
        seed = await seed_store(store)
        await store.close()
        client = TestClient(TestServer(create_app(settings, media_worker=False)))
        await client.start_server()
        try:
            resp = await client.post(
                "/api/login", json={"username": "reception", "password": PASSWORD}
            )
            if resp.status != 200:
                raise RuntimeError(await resp.text())
            me = await (await client.get("/api/me")).json()
            headers = {"X-CSRF-Token": me["csrf_token"]}
            start = time.perf_counter()
            app = client.server.app
            async with app[keys.STORE].transaction() as tx:
                for i in range(n):
                    await items.register_item(
                        tx,
                        app[keys.CALENDAR],
                        items.NewItem(
                            registering_unit_id=seed.units["QX-XFJ-JDZX"],
                            type=ItemType.COMPLAINT,
                            channel=[Channel.VISIT, Channel.LETTER, Channel.ONLINE][i % 3],
                            category=["housing", "labour", "land", "welfare"][i % 4],
                            request=f"第{i}号诉求：请求解决小区加装电梯补贴问题",
                            petitioners=[items.NewPetitioner(name="张三", phone=f"138{i:08d}")],
                        ),
                        keyring=app[keys.KEYRING],
                        account_id=seed.account_ids["reception"],
                    )
            load_s = time.perf_counter() - start
            figures = {
                "csv": await _timed(client, "/api/items.csv", headers, runs),
                "page_due": await _timed(
                    client, "/api/items?sort=due&order=asc&limit=20", headers, runs
                ),
                "counts": await _timed(client, "/api/items/counts", headers, runs),
                "list500": await _timed(client, "/api/items?limit=500", headers, runs),
            }
        finally:
            await client.close()
    for name, (ms, size) in figures.items():
        print(f"{name:10s} {ms:8.1f} ms  {size:9d} bytes")
    print(f"registered {n} items in {load_s:.1f} s")
    print(
        f"BENCH workbench items={n} csv_rows={min(n, 2000)} "
        f"csv_ms={figures['csv'][0]:.1f} csv_bytes={figures['csv'][1]} "
        f"page_due_ms={figures['page_due'][0]:.1f} counts_ms={figures['counts'][0]:.1f} "
        f"baseline_list500_ms={figures['list500'][0]:.1f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.items, args.runs))
