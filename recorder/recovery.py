"""Close recordings left open by a crashed worker, without deleting anything.

A recording run is left open when its directory still has the ``recording.open`` marker (or
a manifest in state ``open``). The marker is ``flock``-ed by the live writer, so a marker we
can lock belongs to a dead process; one we cannot lock is a live recording (possibly on
another worker sharing the directory) and is skipped. Matroska files stay readable up to
their last flushed cluster; recovery measures what is there by demuxing, hashes it and
marks the manifest ``recovered (truncated)``, then chains it.

A killed file has no Cues (the muxer writes them at close) and no final Duration, so players
cannot seek it. Recovery therefore also stream-copies its readable part, without
transcoding, into ``<name>.recovered.<ext>``, which the muxer closes with Cues and a
Duration. The truncated original is evidence and stays as it was (read only, hashed); the
remuxed copy is listed as a file of its own, with its own hash and ``derived_from`` naming
the original.

Run it at worker start, before any recording of this process begins (``flock`` locks held
by this same process would not block it on NFS).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import av

from config.errors import RecorderError
from recorder.chain import append_chain, read_chain
from recorder.layout import RunDir, close_run, open_runs, run_dirs
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
from recorder.segment import fsync_dir

logger = logging.getLogger(__name__)

_MEDIA_SUFFIXES = (".webm", ".mkv")
#: infix of the seekable copy recovery makes of a truncated file (``x.webm`` → ``x.recovered.webm``)
RECOVERED_INFIX = ".recovered"
REASON_RECOVERY_REMUX = "recovery_remux"


def recover(
    root: Path, *, scan_all: bool = True, skip: Iterable[tuple[str, str]] = ()
) -> list[RoomManifest]:
    """Finalise every crashed recording run under ``root`` (blocking; run it in a thread).

    Args:
        root: the recordings root.
        scan_all: look at every run and older-layout session (at worker start); otherwise
            only at the runs listed as open (``recorder.layout.open_runs``: cheap enough to
            run every few seconds, so a run whose worker died is closed by a live worker).
        skip: ``(session, run)`` pairs this process is recording now.

    Returns:
        One manifest per run recovered (state ``recovered (truncated)``), or chained late
        (a crash between the final manifest write and the chain append).
    """
    root = Path(root)
    results: list[RoomManifest] = []
    if not root.exists():
        return results
    chained = {(entry.session, entry.run) for entry in read_chain(root)}
    candidates: dict[tuple[str, str | None], RunDir] = {}
    for found in open_runs(root):
        candidates[(found.session, found.run)] = found
    if scan_all:
        for found in run_dirs(root):
            candidates.setdefault((found.session, found.run), found)
    busy = set(skip)
    for key, target in sorted(candidates.items(), key=lambda kv: kv[1].label):
        if key[1] is not None and (key[0], key[1]) in busy:
            continue
        manifest = _recover_run(root, target, key in chained)
        if manifest is not None:
            chained.add(key)
            results.append(manifest)
    return results


def _recover_run(root: Path, target: RunDir, chained: bool) -> RoomManifest | None:
    directory = target.path
    manifest_path = directory / MANIFEST_NAME
    marker_path = directory / OPEN_MARKER
    with contextlib.ExitStack() as stack:
        if marker_path.exists():
            marker = stack.enter_context(marker_path.open("rb"))
            try:
                fcntl.flock(marker.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None  # a live recording (maybe on another worker)
        if not manifest_path.exists():
            # created and never written: nothing to finalise
            marker_path.unlink(missing_ok=True)
            close_run(root, target.session, target.run)
            return None
        try:
            data: dict[str, Any] = json.loads(manifest_path.read_bytes())
        except ValueError:
            logger.error("recovery: unreadable manifest %s, left as is", manifest_path)
            return None
        state = data.get("state")
        if state == STATE_OPEN:
            _recover_files(directory, data)
            payload = manifest_bytes(data)
            write_atomic(manifest_path, payload)
        elif state in (STATE_CLOSED, STATE_RECOVERED) and not chained:
            payload = manifest_path.read_bytes()
        else:
            marker_path.unlink(missing_ok=True)
            close_run(root, target.session, target.run)
            return None
        entry = append_chain(root, target.session, payload, target.run)
        marker_path.unlink(missing_ok=True)
        close_run(root, target.session, target.run)
    logger.warning("recovery: run %s finalised as %s", target.label, data["state"])
    return RoomManifest(
        session=target.session,
        path=manifest_path,
        sha256=entry.manifest_sha256,
        chain_hash=entry.chain,
        previous_chain_hash=entry.previous,
        state=str(data["state"]),
        data=json.loads(payload),
        run=target.run,
        chain_index=entry.index,
    )


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


def derived_name(name: str) -> str:
    """The name of the seekable copy of the truncated file ``name``."""
    stem, dot, ext = name.rpartition(".")
    return f"{stem}{RECOVERED_INFIX}{dot}{ext}" if dot else f"{name}{RECOVERED_INFIX}"


def remux(source: Path, destination: Path) -> tuple[float, dict[str, int]]:
    """Stream-copy the readable packets of ``source`` into a new, seekable ``destination``.

    No transcoding: packets keep their bytes, timestamps and keyframe flags; the muxer closes
    the new file with Cues (a cue point per video keyframe) and a Duration. The copy is
    written under an exclusive temporary name in the same directory, made durable, and only
    then linked to ``destination``, which must not exist (nothing is ever written over), so
    a crash never leaves a half-written file under the final name (blocking: run it in a
    thread).

    Returns:
        (end of the last copied packet in seconds, packets copied per kind).

    Raises:
        RecorderError: nothing readable, or the copy could not be written.
    """
    frames = {"video": 0, "audio": 0}
    end = 0.0
    tmp = destination.with_name(f"{destination.name}.{secrets.token_hex(4)}.tmp")
    # O_EXCL reserves the name: two recoveries racing on one file never share a temp file.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    try:
        with av.open(str(source)) as inp:
            streams = [s for s in inp.streams if s.type in frames]
            if not streams:
                raise RecorderError(f"no audio or video in {str(source)!r}")
            fmt = "webm" if source.suffix == ".webm" else "matroska"
            with av.open(str(tmp), "w", format=fmt) as out:
                mapping = {s.index: out.add_stream_from_template(s) for s in streams}
                try:
                    for packet in inp.demux(streams):
                        if packet.pts is None or packet.size == 0:
                            continue  # the demuxer's end-of-stream markers
                        kind = packet.stream.type
                        stop = packet.pts + (packet.duration or 0)
                        packet.stream = mapping[packet.stream.index]
                        out.mux(packet)
                        frames[kind] += 1
                        end = max(end, float(stop * packet.time_base))
                except (av.FFmpegError, ValueError) as exc:
                    # the truncated tail: everything demuxed before it is copied
                    logger.info("recovery: %s copied up to %.3f s (%s)", source, end, exc)
                if not any(frames.values()):
                    raise RecorderError(f"nothing readable in {str(source)!r}")
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.link(tmp, destination)  # unlike rename, fails if the name exists
        fsync_dir(destination.parent)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise RecorderError(f"cannot remux {str(source)!r}: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return end, frames


def recover_file(directory: Path, file: dict[str, Any]) -> dict[str, Any] | None:
    """Close one manifest file entry a crash left in state ``recording``.

    Measures and marks the original (it is never modified), then writes its seekable copy
    (see :func:`remux`) and returns the copy's manifest entry, hashed, with ``derived_from``;
    None when nothing could be copied (the original alone is kept, with a warning).
    """
    media = directory / str(file["path"])
    duration, frames = probe_media(media)
    file["duration_s"] = round(duration, 3)
    file["frames"] = {k: v for k, v in frames.items() if v or k in file["frames"]}
    file["state"] = STATE_RECOVERED
    if file.get("started_at"):
        file["ended_at"] = iso_utc(parse_iso_utc(file["started_at"]) + duration)
    target = directory / derived_name(media.name)
    try:
        if target.exists():
            # An interrupted recovery made it (complete: it gets its name only once written
            # and synced) but did not list it; it is adopted, never written over.
            copied_end, copied = probe_media(target)
        else:
            copied_end, copied = remux(media, target)
    except RecorderError as exc:
        logger.warning("recovery: no seekable copy of %s: %s", media, exc)
        return None
    derived = {
        **file,
        "path": target.name,
        "derived_from": file["path"],
        "duration_s": round(copied_end, 3),
        "frames": {k: v for k, v in copied.items() if v or k in file["frames"]},
        "reason": REASON_RECOVERY_REMUX,
        "bytes": target.stat().st_size,
        "sha256": sha256_file(target),
    }
    if file.get("started_at"):
        derived["ended_at"] = iso_utc(parse_iso_utc(file["started_at"]) + copied_end)
    return derived


def _recover_files(directory: Path, data: dict[str, Any]) -> None:
    files: list[dict[str, Any]] = data.setdefault("files", [])
    listed = {str(f["path"]) for f in files}
    for media in sorted(directory.iterdir()):
        if (
            media.suffix in _MEDIA_SUFFIXES
            and media.name not in listed
            # a copy an interrupted recovery left behind: remade below, not evidence
            and not media.stem.endswith(RECOVERED_INFIX)
        ):
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
    for file in list(files):
        media = directory / str(file["path"])
        if not media.exists():
            continue
        if file.get("state") == "recording":
            derived = recover_file(directory, file)
            if derived is not None:
                files.insert(files.index(file) + 1, derived)
        if file.get("sha256") is None:
            file["bytes"] = media.stat().st_size
            file["sha256"] = sha256_file(media)
        if file.get("ended_at"):
            ends.append(parse_iso_utc(file["ended_at"]))
    data["state"] = STATE_RECOVERED
    data["ended_at"] = iso_utc(max(ends)) if ends else data.get("started_at")
    data["recovered_at"] = iso_utc(time.time())
