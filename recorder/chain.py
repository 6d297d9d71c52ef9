r"""Hash chain over session manifests: each link commits to the previous one.

``chain.jsonl`` under the recordings root is append-only, one JSON object per finalised
session, in finalisation order::

    {"session": "S-1", "manifest_sha256": "…", "previous": "…" | null,
     "chain": "…", "at": "2024-05-01T08:30:00.000Z"}

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

from config.errors import RecorderError
from recorder.manifest import iso_utc

CHAIN_FILE = "chain.jsonl"
_DOMAIN = b"petition-gateway-chain-v1\n"


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


def read_chain(root: Path) -> list[ChainEntry]:
    """All entries of ``root/chain.jsonl`` in file order (empty if there is none)."""
    path = root / CHAIN_FILE
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
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
                )
            )
        except (ValueError, KeyError) as exc:
            raise RecorderError(f"{path}: line {number} is not a chain entry: {line!r}") from exc
    return entries


def append_chain(root: Path, session: str, manifest: bytes) -> ChainEntry:
    """Append a session's manifest to ``root/chain.jsonl`` (blocking; call from a thread).

    Holds an exclusive ``flock`` while it reads the last link and appends, so workers sharing
    the recordings directory never fork the chain.
    """
    root.mkdir(parents=True, exist_ok=True)
    path = root / CHAIN_FILE
    with path.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            handle.seek(0)
            previous: str | None = None
            for line in handle.read().splitlines():
                if line.strip():
                    previous = str(json.loads(line)["chain"])
            digest = hashlib.sha256(manifest).hexdigest()
            entry = ChainEntry(
                session=session,
                manifest_sha256=digest,
                previous=previous,
                chain=link_hash(previous, digest),
                at=iso_utc(time.time()) or "",
            )
            record = {
                "session": entry.session,
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
