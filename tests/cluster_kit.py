"""Media workers as separate ``petition-gateway worker`` processes on one Redis, for the tests
that kill one (tests/integration/test_worker_failover.py, tests/browser/test_browser_failover.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from signaling.bus import Bus
from tests.helpers import T

REPO = Path(__file__).resolve().parents[1]


def worker_env(redis_url: str, prefix: str, data_dir: Path, database_url: str) -> dict[str, str]:
    """The environment of a worker process: this Redis and prefix, loopback ICE, shared data."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        "PYTHONPATH": str(REPO),
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_REDIS_PREFIX": prefix,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_MEDIA_ICE_LOOPBACK_ONLY": "true",
        "GATEWAY_SERVER_LOG_LEVEL": "WARNING",
    }


class WorkerProcess:
    """One ``petition-gateway worker --id <id>``; its output goes to ``log``."""

    def __init__(self, worker_id: str, env: dict[str, str], log: Path) -> None:
        self.id = worker_id
        self.env = env
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the process (it registers on the bus a moment later, see :meth:`live`)."""
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.cli",
                "worker",
                "--id",
                self.id,
                env=self.env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )

    async def live(self, bus: Bus, within: float = 30.0) -> None:
        """Wait until the worker's heartbeat is in the registry."""
        deadline = time.monotonic() + within * T
        while self.id not in await bus.live_workers():
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"worker {self.id} exited: {self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.id} never registered")
            await asyncio.sleep(0.2)

    def kill(self) -> float:
        """SIGKILL the process (no goodbye on the bus, as in a crash); returns when."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        return time.monotonic()

    async def stop(self) -> None:
        """SIGTERM (closes its rooms and recordings), SIGKILL if that takes over 10 s."""
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
        await self.proc.wait()


async def start_workers(
    bus: Bus, ids: tuple[str, ...], env: dict[str, str], logs: Path
) -> list[WorkerProcess]:
    """Start a worker process per id and wait until all are registered."""
    workers = [WorkerProcess(i, env, logs / f"{i}.log") for i in ids]
    for w in workers:
        await w.start()
    for w in workers:
        await w.live(bus)
    return workers


def by_id(workers: list[WorkerProcess], worker_id: Any) -> WorkerProcess:
    """The worker process with this id."""
    return next(w for w in workers if w.id == worker_id)
