"""Where recordings live on disk: sessions, their runs, and the index of open runs.

A session may be recorded in any number of **runs**: recording turned off and on again, the
room moved to another worker after a crash, a recovery. Each run writes only into a
directory of its own, created exclusively, so no run can ever overwrite another's files::

    <root>/chain.jsonl                    the hash chain, one line per finalised run
    <root>/retention.jsonl                media deleted by retention (audited)
    <root>/open-runs/<session>~<run>      one entry per run being written (recovery's index)
    <root>/<session>/runs.jsonl           the session's runs, appended as each starts
    <root>/<session>/<run>/manifest.json  the run's manifest (chained when it is finalised)
    <root>/<session>/<run>/recording.open locked by the writing process while it runs
    <root>/<session>/<run>/<peer>-000.webm

Recordings made before runs existed keep the older layout: the manifest and media directly
in ``<root>/<session>/``; they are read as a run without an id (``run=None``).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.errors import RecorderError
from recorder.manifest import MANIFEST_NAME

RUNS_FILE = "runs.jsonl"
OPEN_RUNS_DIR = "open-runs"
_RUN_PREFIX = "r"


def new_run_id(now: float | None = None) -> str:
    """A run id that sorts by start time and never repeats: ``r20261207T201500Z-1a2b3c4d``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"{_RUN_PREFIX}{stamp}-{secrets.token_hex(4)}"


def is_run_name(name: str) -> bool:
    """Whether a directory name inside a session directory is a run."""
    return name.startswith(_RUN_PREFIX) and "-" in name and "." not in name


@dataclass(frozen=True, slots=True)
class RunDir:
    """One directory holding a manifest: a run, or a session in the older layout."""

    session: str
    run: str | None
    path: Path

    def relative(self, name: str) -> str:
        """The path of a file of this run relative to the session directory."""
        return name if self.run is None else f"{self.run}/{name}"

    @property
    def manifest(self) -> Path:
        """This run's manifest file."""
        return self.path / MANIFEST_NAME

    @property
    def label(self) -> str:
        """``session/run`` (or the session alone in the older layout), for messages."""
        return self.session if self.run is None else f"{self.session}/{self.run}"


def run_dir(root: Path, session: str, run: str | None) -> RunDir:
    """The directory of ``run`` of ``session`` (the session directory when run is None)."""
    base = Path(root) / session
    return RunDir(session, run, base if run is None else base / run)


def run_dirs(root: Path) -> Iterator[RunDir]:
    """Every run (and older-layout session) under ``root`` that has a manifest, sorted."""
    root = Path(root)
    if not root.exists():
        return
    for session in sorted(p for p in root.iterdir() if p.is_dir() and p.name != OPEN_RUNS_DIR):
        yield from session_runs(session)


def session_runs(session_dir: Path) -> list[RunDir]:
    """The runs of one session that have a manifest, oldest first."""
    found = []
    if (session_dir / MANIFEST_NAME).exists():
        found.append(RunDir(session_dir.name, None, session_dir))
    if session_dir.is_dir():
        for run in sorted(p for p in session_dir.iterdir() if p.is_dir() and is_run_name(p.name)):
            if (run / MANIFEST_NAME).exists():
                found.append(RunDir(session_dir.name, run.name, run))
    return found


def create_run(root: Path, session: str, run: str, info: dict[str, Any]) -> RunDir:
    """Create the run's directory exclusively and list it in the session's ``runs.jsonl``.

    Raises:
        RecorderError: the run directory exists already (a run id is never reused).
    """
    target = run_dir(root, session, run)
    target.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.path.mkdir()
    except FileExistsError as exc:
        raise RecorderError(f"recording run {target.label!r} exists already") from exc
    line = json.dumps({"run": run, **info}, sort_keys=True, ensure_ascii=False) + "\n"
    append_line(target.path.parent / RUNS_FILE, line)
    return target


def mark_open(root: Path, session: str, run: str) -> None:
    """List a run as open for recovery; call it once the run's marker is locked."""
    index = Path(root) / OPEN_RUNS_DIR
    index.mkdir(exist_ok=True)
    fd = os.open(index / f"{session}~{run}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.close(fd)


def close_run(root: Path, session: str, run: str | None) -> None:
    """Take a finalised run out of the open index (idempotent)."""
    if run is not None:
        (Path(root) / OPEN_RUNS_DIR / f"{session}~{run}").unlink(missing_ok=True)


def open_runs(root: Path) -> list[RunDir]:
    """The runs listed as open: being written, or left open by a process that died."""
    index = Path(root) / OPEN_RUNS_DIR
    if not index.exists():
        return []
    found = []
    for entry in sorted(index.iterdir()):
        session, sep, run = entry.name.partition("~")
        if sep and session and is_run_name(run):
            found.append(run_dir(root, session, run))
    return found


def read_runs(session_dir: Path) -> list[dict[str, Any]]:
    """The lines of a session's ``runs.jsonl`` (empty when there is none)."""
    path = session_dir / RUNS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_line(path: Path, line: str) -> None:
    """Append one line to a file and make it durable (the file is never rewritten)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


__all__ = [
    "OPEN_RUNS_DIR",
    "RUNS_FILE",
    "RunDir",
    "append_line",
    "close_run",
    "create_run",
    "is_run_name",
    "mark_open",
    "new_run_id",
    "open_runs",
    "read_runs",
    "run_dir",
    "run_dirs",
    "session_runs",
]
