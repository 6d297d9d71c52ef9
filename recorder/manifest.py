"""Manifest JSON of one recorded session: schema constants, atomic writes, hashing.

Schema (``"schema": 1``)::

    {
      "schema": 2,
      "session": "S-123",
      "run": "r20240501T080000Z-1a2b3c4d",  # this run's directory (recorder.layout)
      "state": "open" | "closed" | "recovered (truncated)",
      "kind": "visit",                       # from meta["kind"]
      "units": ["district/…"],               # from meta["units"]
      "codec": "vp8" | "h264",
      "started_at": "2024-05-01T08:00:00.123Z",   # wall clock, ISO 8601 UTC
      "ended_at": "…" | null,
      "participants": {"peer-1": {"name": "…", "role": "officer", "unit": "…"}},
      "files": [
        {
          "path": "peer-1-000.webm",          # relative to the session directory
          "peer": "peer-1", "segment": 0,
          "container": "webm" | "matroska",
          "codecs": {"video": "vp8", "audio": "opus"},   # kinds present
          "width": 640, "height": 480,        # null without video
          "started_at": "…", "ended_at": "…" | null,
          "frames": {"video": 900, "audio": 1500},
          "bytes": 3750000 | null, "sha256": "hex" | null,
          "state": "recording" | "closed" | "recovered (truncated)" | "failed",
          "reason": "start" | "rotation" | "track_added" | "resolution" | "restart"
                    | "recovery_remux",
          "derived_from": "peer-1-000.webm"   # only on recovery's seekable copy
        }
      ],
      "dropped": {"peer-1": {"video": 0, "audio": 0}},   # queue overflow + pre-keyframe drops
      "meta": {...}                          # the caller's other meta keys, verbatim
    }
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2
MANIFEST_NAME = "manifest.json"
OPEN_MARKER = "recording.open"

STATE_OPEN = "open"
STATE_CLOSED = "closed"
STATE_RECOVERED = "recovered (truncated)"

_HASH_CHUNK = 1 << 20


def iso_utc(wallclock: float | None) -> str | None:
    """Format a ``time.time()`` value as ISO 8601 UTC with milliseconds, or None."""
    if wallclock is None:
        return None
    moment = datetime.fromtimestamp(wallclock, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso_utc(text: str) -> float:
    """Inverse of :func:`iso_utc` (returns a ``time.time()`` value)."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks (blocking: call it from a thread)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_bytes(data: dict[str, Any]) -> bytes:
    """Canonical serialisation: the hashed bytes are exactly the bytes on disk."""
    return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def write_atomic(path: Path, payload: bytes, *, fsync: bool = True) -> None:
    """Write ``payload`` to ``path`` through a temporary file and rename (never half-written)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(payload)
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_manifest(session_dir: Path) -> dict[str, Any]:
    """Load ``manifest.json`` of a session directory."""
    data: dict[str, Any] = json.loads((session_dir / MANIFEST_NAME).read_bytes())
    return data


@dataclass(frozen=True, slots=True)
class RoomManifest:
    """The finalised manifest of a session, as returned by :meth:`RoomRecorder.close`.

    Attributes:
        session: the session id.
        path: the manifest file.
        sha256: hex SHA-256 of the manifest file's bytes.
        chain_hash: this session's link in the chain (store it in the database).
        previous_chain_hash: the link it was chained to (None for the first session).
        state: ``"closed"`` (or ``"recovered (truncated)"`` from recovery).
        data: the manifest JSON as a dict (schema in ``recorder.manifest``).
        run: the recording run (``recorder.layout``); None for the older one-per-session layout.
        chain_index: the 1-based position of this run's line in the chain.
    """

    session: str
    path: Path
    sha256: str
    chain_hash: str
    previous_chain_hash: str | None
    state: str
    data: dict[str, Any]
    run: str | None = None
    chain_index: int = 0
