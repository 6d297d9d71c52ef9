r"""Hash chain over session manifests: each link commits to the previous one.

``chain.jsonl`` under the recordings root is append-only, one JSON object per finalised
recording run (``recorder.layout``), in finalisation order::

    {"session": "S-1", "run": "r20240501T080000Z-1a2b3c4d", "n": 17,
     "manifest_sha256": "…", "previous": "…" | null, "chain": "…",
     "at": "2024-05-01T08:30:00.000Z"}

``n`` is the line's position (1-based) and ``run`` the run directory; lines written before
runs existed have neither (their manifest is ``<session>/manifest.json``).

``chain = sha256("petition-gateway-chain-v1\n" + previous_or_empty + "\n" + manifest_sha256)``.
Removing or altering a line, or a manifest, breaks every later link. Appends from several
processes sharing the directory are serialised with ``flock``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from config.errors import RecorderError
from recorder.manifest import iso_utc

CHAIN_FILE = "chain.jsonl"
_DOMAIN = b"petition-gateway-chain-v1\n"
_TAIL_BYTES = 4096


def chain_hash(previous: str | None, manifest: bytes) -> str:
    """Chain hash of a manifest given the previous link's chain hash (None for the first).

    Args:
        previous: hex chain hash of the previous session, or None at the start of a chain.
        manifest: the exact bytes of the manifest file.

    Returns:
        The hex SHA-256 link for this manifest.
    """
    return link_hash(previous, hashlib.sha256(manifest).hexdigest())


def link_hash(previous: str | None, manifest_sha256: str) -> str:
    """Like :func:`chain_hash` but from the manifest's hex SHA-256."""
    digest = hashlib.sha256(_DOMAIN)
    digest.update((previous or "").encode() + b"\n" + manifest_sha256.encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One line of ``chain.jsonl``."""

    session: str
    manifest_sha256: str
    previous: str | None
    chain: str
    at: str
    run: str | None = None
    index: int = 0  # 1-based position in the file
    stated_index: int | None = None  # the ``n`` written on the line (None on older lines)


def read_chain(root: Path) -> list[ChainEntry]:
    """All entries of ``root/chain.jsonl`` in file order (empty if there is none)."""
    return read_chain_from(root, 0, 0)[0]


def read_chain_from(root: Path, offset: int, seen: int) -> tuple[list[ChainEntry], int]:
    """The complete lines after byte ``offset`` (``seen`` lines precede it), and the new offset.

    The chain is append-only, so a reader that remembers where it stopped reads only what was
    appended since; a line still being written (no newline yet) is left for the next call.
    """
    path = root / CHAIN_FILE
    if not path.exists():
        return [], offset
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    complete = data[: data.rfind(b"\n") + 1]
    entries: list[ChainEntry] = []
    for number, line in enumerate(complete.decode().splitlines(), seen + 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            entries.append(
                ChainEntry(
                    session=str(raw["session"]),
                    manifest_sha256=str(raw["manifest_sha256"]),
                    previous=raw["previous"],
                    chain=str(raw["chain"]),
                    at=str(raw["at"]),
                    run=None if raw.get("run") is None else str(raw["run"]),
                    index=seen + len(entries) + 1,
                    stated_index=None if raw.get("n") is None else int(raw["n"]),
                )
            )
        except (ValueError, KeyError) as exc:
            raise RecorderError(f"{path}: line {number} is not a chain entry: {line!r}") from exc
    return entries, offset + len(complete)


def _last_link(handle: IO[bytes]) -> tuple[str | None, int]:
    """The last line's chain hash and the number of lines, reading only the tail if it can."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return None, 0
    handle.seek(max(0, size - _TAIL_BYTES))
    lines = [line for line in handle.read().splitlines() if line.strip()]
    if lines and size > _TAIL_BYTES:
        lines = lines[1:]  # the first may be cut
    if lines:
        last = json.loads(lines[-1])
        if last.get("n") is not None:
            return str(last["chain"]), int(last["n"])
    handle.seek(0)  # older lines carry no position: count them all
    previous: str | None = None
    count = 0
    for line in handle.read().splitlines():
        if line.strip():
            previous = str(json.loads(line)["chain"])
            count += 1
    return previous, count


def append_chain(root: Path, session: str, manifest: bytes, run: str | None = None) -> ChainEntry:
    """Append a run's manifest to ``root/chain.jsonl`` (blocking; call from a thread).

    Holds an exclusive ``flock`` while it reads the last link and appends, so workers sharing
    the recordings directory never fork the chain.
    """
    root.mkdir(parents=True, exist_ok=True)
    path = root / CHAIN_FILE
    with path.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            previous, count = _last_link(handle)
            digest = hashlib.sha256(manifest).hexdigest()
            entry = ChainEntry(
                session=session,
                manifest_sha256=digest,
                previous=previous,
                chain=link_hash(previous, digest),
                at=iso_utc(time.time()) or "",
                run=run,
                index=count + 1,
                stated_index=count + 1,
            )
            record: dict[str, object] = {
                "session": entry.session,
                "run": run,
                "n": entry.index,
                "manifest_sha256": entry.manifest_sha256,
                "previous": entry.previous,
                "chain": entry.chain,
                "at": entry.at,
            }
            handle.seek(0, os.SEEK_END)
            handle.write((json.dumps(record, sort_keys=True) + "\n").encode())
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return entry
