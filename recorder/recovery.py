"""Close recordings left open by a crashed worker, without deleting anything.

A recording is left open when its directory still has the ``recording.open`` marker (or a
manifest in state ``open``). The marker is ``flock``-ed by the live writer, so a marker we
can lock belongs to a dead process; one we cannot lock is a live recording (possibly on
another worker sharing the directory) and is skipped. Matroska files stay readable up to
their last flushed cluster; recovery measures what is there by demuxing, hashes it and
marks the manifest ``recovered (truncated)``, then chains it.

Run it at worker start, before any recording of this process begins (``flock`` locks held
by this same process would not block it on NFS).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import time
from pathlib import Path
from typing import Any

import av

from recorder.chain import append_chain, read_chain
from recorder.manifest import (
    MANIFEST_NAME,
    OPEN_MARKER,
    STATE_CLOSED,
    STATE_OPEN,
    STATE_RECOVERED,
    RoomManifest,
    iso_utc,
    manifest_bytes,
    parse_iso_utc,
    sha256_file,
    write_atomic,
)

logger = logging.getLogger(__name__)

_MEDIA_SUFFIXES = (".webm", ".mkv")


def recover(root: Path) -> list[RoomManifest]:
    """Finalise every crashed recording under ``root`` (blocking; run it in a thread).

    Args:
        root: the recordings root.

    Returns:
        One manifest per session recovered (state ``recovered (truncated)``), or chained
        late (a crash between the final manifest write and the chain append).
    """
    root = Path(root)
    results: list[RoomManifest] = []
    if not root.exists():
        return results
    chained = {entry.session for entry in read_chain(root)}
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        manifest_path = directory / MANIFEST_NAME
        marker_path = directory / OPEN_MARKER
        if not manifest_path.exists():
            continue
        with contextlib.ExitStack() as stack:
            if marker_path.exists():
                marker = stack.enter_context(marker_path.open("rb"))
                try:
                    fcntl.flock(marker.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live recording
            try:
                data: dict[str, Any] = json.loads(manifest_path.read_bytes())
            except ValueError:
                logger.error("recovery: unreadable manifest %s, left as is", manifest_path)
                continue
            state = data.get("state")
            if state == STATE_OPEN:
                _recover_files(directory, data)
                payload = manifest_bytes(data)
                write_atomic(manifest_path, payload)
            elif state in (STATE_CLOSED, STATE_RECOVERED) and directory.name not in chained:
                payload = manifest_path.read_bytes()
            else:
                if marker_path.exists():
                    marker_path.unlink()
                continue
            entry = append_chain(root, directory.name, payload)
            chained.add(directory.name)
            if marker_path.exists():
                marker_path.unlink()
            logger.warning("recovery: session %s finalised as %s", directory.name, data["state"])
            results.append(
                RoomManifest(
                    session=directory.name,
                    path=manifest_path,
                    sha256=entry.manifest_sha256,
                    chain_hash=entry.chain,
                    previous_chain_hash=entry.previous,
                    state=str(data["state"]),
                    data=json.loads(payload),
                )
            )
    return results


def probe_media(path: Path) -> tuple[float, dict[str, int]]:
    """(duration in seconds, packets per kind) of a possibly truncated file."""
    frames = {"video": 0, "audio": 0}
    end = 0.0
    try:
        with av.open(str(path)) as container:
            for packet in container.demux():
                if packet.pts is None or packet.size == 0:
                    continue
                kind = packet.stream.type
                if kind in frames:
                    frames[kind] += 1
                stop = packet.pts + (packet.duration or 0)
                end = max(end, float(stop * packet.time_base))
    except (av.FFmpegError, OSError, ValueError) as exc:
        # A truncated tail ends the demux with an error: everything before it counts.
        logger.info("recovery: %s readable up to %.3f s (%s)", path, end, exc)
    return end, frames


def _recover_files(directory: Path, data: dict[str, Any]) -> None:
    files: list[dict[str, Any]] = data.setdefault("files", [])
    listed = {str(f["path"]) for f in files}
    for media in sorted(directory.iterdir()):
        if media.suffix in _MEDIA_SUFFIXES and media.name not in listed:
            # Opened but not yet in the manifest when the process died.
            files.append(
                {
                    "path": media.name,
                    "peer": None,
                    "segment": None,
                    "started_at": None,
                    "ended_at": None,
                    "frames": {},
                    "bytes": None,
                    "sha256": None,
                    "state": "recording",
                    "reason": "unlisted",
                }
            )
    ends: list[float] = []
    for file in files:
        media = directory / str(file["path"])
        if not media.exists():
            continue
        if file.get("state") == "recording":
            duration, frames = probe_media(media)
            file["duration_s"] = round(duration, 3)
            file["frames"] = {k: v for k, v in frames.items() if v or k in file["frames"]}
            file["state"] = STATE_RECOVERED
            if file.get("started_at"):
                file["ended_at"] = iso_utc(parse_iso_utc(file["started_at"]) + duration)
        if file.get("sha256") is None:
            file["bytes"] = media.stat().st_size
            file["sha256"] = sha256_file(media)
        if file.get("ended_at"):
            ends.append(parse_iso_utc(file["ended_at"]))
    data["state"] = STATE_RECOVERED
    data["ended_at"] = iso_utc(max(ends)) if ends else data.get("started_at")
    data["recovered_at"] = iso_utc(time.time())
