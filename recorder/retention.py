"""Retention sweeper: delete expired media, keep manifests and hashes.

Manifests are never rewritten (their hashes are chained), so each deletion is appended to
``retention.jsonl`` under the recordings root; ``verify`` then knows the file is gone on
purpose. The lead audit-logs the returned list in the database.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from config.errors import RecorderError
from recorder.layout import run_dirs
from recorder.manifest import (
    MANIFEST_NAME,
    OPEN_MARKER,
    STATE_OPEN,
    iso_utc,
    parse_iso_utc,
)

logger = logging.getLogger(__name__)

RETENTION_LOG = "retention.jsonl"
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class DeletedFile:
    """One media file removed by the sweeper.

    Attributes:
        session: session id.
        path: the file's path inside the session directory (``run/name``).
        kind: the session kind whose retention applied.
        bytes: size before deletion.
        sha256: the manifest's hash of the deleted file.
        ended_at: when the session ended (ISO 8601 UTC).
        deleted_at: when it was deleted (ISO 8601 UTC).
    """

    session: str
    path: str
    kind: str
    bytes: int
    sha256: str | None
    ended_at: str
    deleted_at: str


def sweep(root: Path, retention_days: Mapping[str, float], now: float) -> list[DeletedFile]:
    """Delete media of finalised sessions older than their kind's retention.

    Blocking (call it in a thread). Sessions still open, and kinds without a configured
    retention, are kept.

    Args:
        root: the recordings root.
        retention_days: days to keep, per session kind (``meta["kind"]``).
        now: ``time.time()`` of the sweep.

    Returns:
        What was deleted, for the audit log.
    """
    root = Path(root)
    deleted: list[DeletedFile] = []
    if not root.exists():
        return deleted
    for target in run_dirs(root):
        directory = target.path
        manifest_path = directory / MANIFEST_NAME
        if (directory / OPEN_MARKER).exists():
            continue
        try:
            data = json.loads(manifest_path.read_bytes())
        except ValueError:
            logger.warning("retention: unreadable manifest %s", manifest_path)
            continue
        kind = str(data.get("kind"))
        if data.get("state") == STATE_OPEN or kind not in retention_days:
            continue
        ended = data.get("ended_at") or data.get("started_at")
        if not ended or parse_iso_utc(ended) + retention_days[kind] * _DAY > now:
            continue
        for file in data.get("files", []):
            media = directory / str(file["path"])
            if not media.exists():
                continue
            size = media.stat().st_size
            try:
                media.unlink()
            except OSError as exc:
                raise RecorderError(f"retention: cannot delete {str(media)!r}: {exc}") from exc
            record = DeletedFile(
                session=target.session,
                path=target.relative(str(file["path"])),
                kind=kind,
                bytes=size,
                sha256=file.get("sha256"),
                ended_at=ended,
                deleted_at=iso_utc(now) or "",
            )
            _log_deletion(root, record)
            deleted.append(record)
    return deleted


def _log_deletion(root: Path, record: DeletedFile) -> None:
    with (root / RETENTION_LOG).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(record), sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_retention_log(root: Path) -> list[DeletedFile]:
    """All deletions recorded under ``root`` (empty if none)."""
    path = Path(root) / RETENTION_LOG
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            records.append(DeletedFile(**json.loads(line)))
    return records
