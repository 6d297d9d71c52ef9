"""Re-hash every recording and walk the whole chain: report what changed or went missing.

Three witnesses are compared: the files on disk, the hash chain (``chain.jsonl``, one line
per finalised run, each line committing to the one before), and, when given, what the
database recorded (:class:`Expected`: the anchored head of the chain, each run's chain hash,
each file's hash). The chain alone cannot show that its newest lines were cut off together
with their runs; the anchored head (hash and length) can, whether it comes from the database
or from an operator's note of an earlier ``verify`` summary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.errors import RecorderError
from recorder.chain import CHAIN_FILE, ChainEntry, link_hash, read_chain
from recorder.layout import RunDir, run_dir, run_dirs
from recorder.manifest import MANIFEST_NAME, OPEN_MARKER, STATE_OPEN, sha256_file
from recorder.retention import read_retention_log

_MEDIA_SUFFIXES = (".webm", ".mkv")


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One integrity problem.

    Attributes:
        session: the session concerned (None for the chain file itself).
        problem: one of ``changed`` (a file's bytes differ from its recorded hash),
            ``missing_file``, ``unhashed_file``, ``unlisted_file`` (a media file no manifest
            lists), ``manifest_changed``, ``missing_manifest`` (a chained run's directory or
            manifest is gone), ``chain_broken`` (a link does not follow from the previous
            one: a line was removed, altered or moved), ``chain_truncated`` (the chain is
            shorter than its anchored head: the newest runs were removed),
            ``chain_head_mismatch``, ``unanchored_entry`` (a chain line the database has no
            run for), ``missing_from_chain`` (a run the database has that the chain lacks),
            ``db_mismatch`` (a file's hash in its manifest differs from the database's),
            ``unchained_session`` (a finalised run not in the chain), ``unknown_session``,
            ``unreadable``.
        path: the file concerned, relative to the recordings root, when there is one.
        detail: a human-readable explanation quoting the values compared.
    """

    session: str | None
    problem: str
    path: str | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        """The form ``recordings verify --json`` prints."""
        return {
            "session": self.session,
            "problem": self.problem,
            "path": self.path,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Anchor:
    """The head of the chain: the last line's chain hash and the number of lines."""

    chain_hash: str
    length: int


@dataclass(frozen=True, slots=True)
class Expected:
    """What the database (or an operator's note) says the recordings directory holds.

    Attributes:
        head: the anchored head of the chain, or None when nothing is anchored yet.
        runs: chain hash → manifest path relative to the root, for every finalised run.
        files: file path relative to the root → (sha256, deleted by retention).
    """

    head: Anchor | None = None
    runs: Mapping[str, str] | None = None
    files: Mapping[str, tuple[str, bool]] = field(default_factory=dict)


@dataclass(slots=True)
class Report:
    """The outcome of :func:`check`."""

    problems: list[Mismatch]
    head: Anchor | None
    runs: int = 0
    files: int = 0
    sessions: int = 0
    open_runs: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The summary ``recordings verify --json`` prints."""
        return {
            "ok": not self.problems,
            "head": None
            if self.head is None
            else {"chain_hash": self.head.chain_hash, "length": self.head.length},
            "sessions": self.sessions,
            "runs": self.runs,
            "files": self.files,
            "open_runs": self.open_runs,
            "problems": [p.as_json() for p in self.problems],
        }


def verify(root: Path, session: str | None = None) -> list[Mismatch]:
    """The problems :func:`check` finds without a database (blocking)."""
    return check(root, session).problems


def check(root: Path, session: str | None = None, expected: Expected | None = None) -> Report:
    """Check the chain, re-hash every chained file, and compare with ``expected``.

    Blocking: run it in a thread. Every run ever chained is re-hashed (or only ``session``'s
    runs when given; the chain and its head are always checked in full). Media removed by
    the retention sweeper (``retention.jsonl``) is not reported, unless ``expected`` shows
    the database never recorded that deletion.

    Args:
        root: the recordings root (holds ``chain.jsonl`` and one directory per session).
        session: restrict file re-hashing to this session.
        expected: the database's (or an operator's) view to compare with.

    Returns:
        The report: every mismatch found (empty when everything verifies) and the head.
    """
    root = Path(root)
    try:
        entries = read_chain(root)
    except RecorderError as exc:
        return Report([Mismatch(None, "unreadable", CHAIN_FILE, str(exc))], None)
    report = Report(
        _check_links(entries),
        Anchor(entries[-1].chain, entries[-1].index) if entries else None,
    )
    deleted = {(d.session, d.path) for d in read_retention_log(root)}
    db_files = dict(expected.files) if expected is not None else None

    chained: set[tuple[str, str | None]] = set()
    listed: dict[str, str | None] = {}  # root-relative path → manifest hash of the file
    for entry in entries:
        chained.add((entry.session, entry.run))
        if session is not None and entry.session != session:
            continue
        report.runs += 1
        report.problems.extend(_check_run(root, entry, deleted, db_files, listed))
    report.files = len(listed)
    report.sessions = len({e.session for e in entries})
    known_session = session is None or any(e.session == session for e in entries)
    if not known_session and not (root / str(session)).exists():
        report.problems.append(
            Mismatch(session, "unknown_session", None, f"no session {session!r} under {root}")
        )

    for found in run_dirs(root):
        if session is not None and found.session != session:
            continue
        if (found.session, found.run) in chained:
            continue
        state = _state(found)
        if state == STATE_OPEN or (found.path / OPEN_MARKER).exists():
            report.open_runs.append(found.label)
            continue
        report.problems.append(
            Mismatch(
                found.session,
                "unchained_session",
                f"{found.session}/{found.relative(MANIFEST_NAME)}",
                f"finalised manifest of {found.label} (state {state!r}) is not in {CHAIN_FILE}",
            )
        )
    if expected is not None:
        report.problems.extend(_check_head(entries, expected))
        if session is None and db_files is not None:
            report.problems.extend(_check_db_files(root, db_files, listed, report.open_runs))
    return report


def _state(found: RunDir) -> Any:
    try:
        return json.loads(found.manifest.read_bytes()).get("state")
    except (ValueError, OSError):
        return None


def _check_links(entries: list[ChainEntry]) -> list[Mismatch]:
    problems = []
    previous: str | None = None
    for entry in entries:
        number = entry.index
        if entry.previous != previous:
            problems.append(
                Mismatch(
                    entry.session,
                    "chain_broken",
                    CHAIN_FILE,
                    f"line {number}: previous link {entry.previous!r} but the line before "
                    f"ends in {previous!r} (a run was removed, altered or moved)",
                )
            )
        expected = link_hash(entry.previous, entry.manifest_sha256)
        if expected != entry.chain:
            problems.append(
                Mismatch(
                    entry.session,
                    "chain_broken",
                    CHAIN_FILE,
                    f"line {number}: chain {entry.chain!r} should be {expected!r}",
                )
            )
        if entry.stated_index is not None and entry.stated_index != number:
            problems.append(
                Mismatch(
                    entry.session,
                    "chain_broken",
                    CHAIN_FILE,
                    f"line {number} says it is line {entry.stated_index}",
                )
            )
        previous = entry.chain
    return problems


def _check_run(
    root: Path,
    entry: ChainEntry,
    deleted: set[tuple[str, str]],
    db_files: dict[str, tuple[str, bool]] | None,
    listed: dict[str, str | None],
) -> list[Mismatch]:
    target = run_dir(root, entry.session, entry.run)
    name = entry.session
    relative = f"{name}/{target.relative(MANIFEST_NAME)}"
    if not target.manifest.exists():
        return [Mismatch(name, "missing_manifest", relative, f"{relative} is gone")]
    actual = sha256_file(target.manifest)
    if actual != entry.manifest_sha256:
        return [
            Mismatch(
                name,
                "manifest_changed",
                relative,
                f"sha256 {actual} but chain line {entry.index} recorded {entry.manifest_sha256}",
            )
        ]
    try:
        data = json.loads(target.manifest.read_bytes())
    except ValueError as exc:
        return [Mismatch(name, "unreadable", relative, str(exc))]
    problems = []
    names = set()
    for file in data.get("files", []):
        path = str(file["path"])
        names.add(path)
        in_session = target.relative(path)
        relative = f"{name}/{in_session}"
        expected = file.get("sha256")
        listed[relative] = expected
        media = target.path / path
        if not media.exists():
            retired = (name, in_session) in deleted
            if retired and db_files is not None and relative in db_files:
                retired = db_files[relative][1]  # the database must know of the deletion
            if not retired and file.get("state") != "failed":
                problems.append(Mismatch(name, "missing_file", relative, f"{relative} is gone"))
            continue
        if expected is None:
            problems.append(
                Mismatch(name, "unhashed_file", relative, f"{relative} has no recorded hash")
            )
            continue
        actual = sha256_file(media)
        if actual != expected:
            problems.append(
                Mismatch(
                    name, "changed", relative, f"sha256 {actual} but the manifest says {expected}"
                )
            )
    for media in sorted(target.path.iterdir()):
        if media.suffix in _MEDIA_SUFFIXES and media.name not in names:
            relative = f"{name}/{target.relative(media.name)}"
            problems.append(
                Mismatch(
                    name,
                    "unlisted_file",
                    relative,
                    f"{relative} is not in the manifest of {target.label}",
                )
            )
    return problems


def _check_head(entries: list[ChainEntry], expected: Expected) -> list[Mismatch]:
    problems = []
    head = expected.head
    known = expected.runs or {}
    anchored = 0
    if head is not None:
        if len(entries) < head.length:
            problems.append(
                Mismatch(
                    None,
                    "chain_truncated",
                    CHAIN_FILE,
                    f"{CHAIN_FILE} has {len(entries)} lines but the anchored head is line "
                    f"{head.length} ({head.chain_hash}): the newest runs were removed",
                )
            )
            anchored = len(entries)
        elif entries[head.length - 1].chain != head.chain_hash:
            problems.append(
                Mismatch(
                    entries[head.length - 1].session,
                    "chain_head_mismatch",
                    CHAIN_FILE,
                    f"line {head.length} ends in {entries[head.length - 1].chain} but the "
                    f"anchored head is {head.chain_hash}",
                )
            )
            anchored = head.length
        else:
            anchored = head.length
    if expected.runs is None:
        return problems
    chain_hashes = {e.chain for e in entries}
    for entry in entries[anchored:] if head is not None else entries:
        if entry.chain not in known:
            problems.append(
                Mismatch(
                    entry.session,
                    "unanchored_entry",
                    CHAIN_FILE,
                    f"line {entry.index} ({entry.session} {entry.run or ''}) is not a run the "
                    "database recorded",
                )
            )
    for chain_hash, manifest in sorted(known.items(), key=lambda kv: kv[1]):
        if chain_hash not in chain_hashes:
            problems.append(
                Mismatch(
                    manifest.split("/", 1)[0],
                    "missing_from_chain",
                    manifest,
                    f"the database recorded {manifest} with chain hash {chain_hash}; "
                    f"{CHAIN_FILE} has no such line",
                )
            )
    return problems


def _check_db_files(
    root: Path,
    db_files: dict[str, tuple[str, bool]],
    listed: dict[str, str | None],
    open_runs: list[str],
) -> list[Mismatch]:
    problems = []
    live = tuple(f"{label}/" for label in open_runs)
    for relative, (sha, deleted) in sorted(db_files.items()):
        session = relative.split("/", 1)[0]
        if relative in listed:
            if sha and listed[relative] and sha != listed[relative]:
                problems.append(
                    Mismatch(
                        session,
                        "db_mismatch",
                        relative,
                        f"the database has sha256 {sha}, the manifest {listed[relative]}",
                    )
                )
            continue
        if deleted or relative.startswith(live):
            continue
        media = root / relative
        if not media.exists():
            problems.append(
                Mismatch(session, "missing_file", relative, f"{relative} (in the database) is gone")
            )
        elif sha and sha256_file(media) != sha:
            problems.append(
                Mismatch(session, "changed", relative, f"sha256 differs from the database's {sha}")
            )
    return problems


__all__ = ["Anchor", "Expected", "Mismatch", "Report", "check", "verify"]
