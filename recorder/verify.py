"""Re-hash recordings and walk the manifest chain: report what changed or went missing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from config.errors import RecorderError
from recorder.chain import CHAIN_FILE, ChainEntry, link_hash, read_chain
from recorder.manifest import MANIFEST_NAME, STATE_OPEN, sha256_file
from recorder.retention import read_retention_log


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One integrity problem.

    Attributes:
        session: the session concerned (None for the chain file itself).
        problem: one of ``changed`` (a file's bytes differ from its manifest hash),
            ``missing_file``, ``unhashed_file``, ``manifest_changed``, ``missing_manifest``
            (a chained session's directory or manifest is gone), ``chain_broken`` (a link
            does not follow from the previous one: a session was removed from or altered
            in the chain), ``unchained_session`` (a finalised session not in the chain),
            ``unknown_session``, ``unreadable``.
        path: the file concerned, relative to the recordings root, when there is one.
        detail: a human-readable explanation quoting the values compared.
    """

    session: str | None
    problem: str
    path: str | None
    detail: str


def verify(root: Path, session: str | None = None) -> list[Mismatch]:
    """Check the hash chain and re-hash media files (blocking; run it in a thread).

    The chain is always checked link by link (cheap). Files are re-hashed for every
    chained session, or only for ``session`` when given. Media removed by the retention
    sweeper (listed in ``retention.jsonl``) is not reported.

    Args:
        root: the recordings root (holds ``chain.jsonl`` and one directory per session).
        session: restrict file re-hashing to this session.

    Returns:
        Every mismatch found; empty when everything verifies.
    """
    root = Path(root)
    problems: list[Mismatch] = []
    try:
        entries = read_chain(root)
    except RecorderError as exc:
        return [Mismatch(None, "unreadable", CHAIN_FILE, str(exc))]
    problems.extend(_check_links(entries))
    deleted = {(d.session, d.path) for d in read_retention_log(root)}

    latest: dict[str, ChainEntry] = {}
    for entry in entries:
        latest[entry.session] = entry
    targets = [session] if session is not None else list(latest)
    for name in targets:
        found = latest.get(name)
        if found is None:
            if (root / name / MANIFEST_NAME).exists():
                continue  # reported below as unchained (or still open)
            problems.append(
                Mismatch(name, "unknown_session", None, f"no session {name!r} under {root}")
            )
            continue
        problems.extend(_check_session(root, found, deleted))

    for directory in sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []:
        if session is not None and directory.name != session:
            continue
        manifest = directory / MANIFEST_NAME
        if directory.name in latest or not manifest.exists():
            continue
        try:
            state = json.loads(manifest.read_bytes()).get("state")
        except ValueError:
            state = None
        if state != STATE_OPEN:
            problems.append(
                Mismatch(
                    directory.name,
                    "unchained_session",
                    f"{directory.name}/{MANIFEST_NAME}",
                    f"finalised manifest (state {state!r}) is not in {CHAIN_FILE}",
                )
            )
    return problems


def _check_links(entries: list[ChainEntry]) -> list[Mismatch]:
    problems = []
    previous: str | None = None
    for number, entry in enumerate(entries, 1):
        if entry.previous != previous:
            problems.append(
                Mismatch(
                    entry.session,
                    "chain_broken",
                    CHAIN_FILE,
                    f"line {number}: previous link {entry.previous!r} but the line before "
                    f"ends in {previous!r} (a session was removed or altered)",
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
        previous = entry.chain
    return problems


def _check_session(root: Path, entry: ChainEntry, deleted: set[tuple[str, str]]) -> list[Mismatch]:
    name = entry.session
    manifest_path = root / name / MANIFEST_NAME
    relative = f"{name}/{MANIFEST_NAME}"
    if not manifest_path.exists():
        return [Mismatch(name, "missing_manifest", relative, f"{relative} is gone")]
    actual = sha256_file(manifest_path)
    if actual != entry.manifest_sha256:
        return [
            Mismatch(
                name,
                "manifest_changed",
                relative,
                f"sha256 {actual} but the chain recorded {entry.manifest_sha256}",
            )
        ]
    try:
        data = json.loads(manifest_path.read_bytes())
    except ValueError as exc:
        return [Mismatch(name, "unreadable", relative, str(exc))]
    problems = []
    for file in data.get("files", []):
        path = str(file["path"])
        relative = f"{name}/{path}"
        media = root / name / path
        if not media.exists():
            if (name, path) not in deleted and file.get("state") != "failed":
                problems.append(Mismatch(name, "missing_file", relative, f"{relative} is gone"))
            continue
        expected = file.get("sha256")
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
    return problems


__all__ = ["Mismatch", "verify"]
