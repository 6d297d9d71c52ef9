"""Tamper evidence, crash recovery and retention on real recordings."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import pytest
from matroska_index import read_index, seek_video
from synthetic_media import Encoded, packets_for

from recorder.chain import CHAIN_FILE
from recorder.recovery import probe_media, recover, remux
from recorder.retention import sweep
from recorder.room import RoomRecorder
from recorder.verify import verify

REPO = Path(__file__).resolve().parents[2]


async def _session(root: Path, name: str, source: list[Encoded], kind: str = "visit") -> Any:
    recorder = RoomRecorder(root, name, "vp8", {"kind": kind, "participants": {}})
    recorder.start()
    for k, packet, arrival in packets_for(source, t0=time.time(), until=2.5):
        recorder.on_packet("p1", k, packet, arrival)
    return await recorder.close()


async def test_verify_reports_a_changed_byte(tmp_path: Path, source: list[Encoded]) -> None:
    manifest = await _session(tmp_path, "S-1", source)
    assert verify(tmp_path) == []
    media = manifest.path.parent / manifest.data["files"][0]["path"]
    data = bytearray(media.read_bytes())
    data[len(data) // 2] ^= 0x01
    media.write_bytes(bytes(data))

    problems = verify(tmp_path, "S-1")
    assert [(p.session, p.problem, p.path) for p in problems] == [
        ("S-1", "changed", f"S-1/{media.parent.name}/{media.name}")
    ]


async def test_verify_reports_missing_file_and_removed_session(
    tmp_path: Path, source: list[Encoded]
) -> None:
    for name in ("S-1", "S-2", "S-3"):
        await _session(tmp_path, name, source)
    assert verify(tmp_path) == []

    # Deleting a session's directory is seen through its chain entry...
    shutil.rmtree(tmp_path / "S-2")
    assert {(p.session, p.problem) for p in verify(tmp_path)} == {("S-2", "missing_manifest")}

    # ...and removing its line from the chain too breaks the next link.
    chain = tmp_path / CHAIN_FILE
    lines = chain.read_text().splitlines()
    chain.write_text("\n".join(line for line in lines if '"S-2"' not in line) + "\n")
    assert {(p.session, p.problem) for p in verify(tmp_path)} == {("S-3", "chain_broken")}

    # A media file removed outside retention is reported.
    victim = next((tmp_path / "S-1").glob("*/*.webm"))
    victim.unlink()
    assert ("S-1", "missing_file") in {(p.session, p.problem) for p in verify(tmp_path)}


async def test_retention_deletes_media_keeps_manifest(
    tmp_path: Path, source: list[Encoded]
) -> None:
    visit = await _session(tmp_path, "S-visit", source, kind="visit")
    await _session(tmp_path, "S-train", source, kind="training")
    manifest_before = visit.path.read_bytes()

    assert sweep(tmp_path, {"visit": 30, "training": 365}, time.time() + 10 * 86400) == []
    deleted = sweep(tmp_path, {"visit": 30, "training": 365}, time.time() + 31 * 86400)

    assert {d.session for d in deleted} == {"S-visit"}
    assert all(d.sha256 for d in deleted)
    assert not list((tmp_path / "S-visit").glob("*/*.webm"))
    assert list((tmp_path / "S-train").glob("*/*.webm"))
    assert visit.path.read_bytes() == manifest_before
    assert verify(tmp_path) == []  # deliberate deletions are not tampering


CHILD = """
import asyncio, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from synthetic_media import encode_source, packets_for
from recorder.room import RoomRecorder

async def main():
    items = packets_for(encode_source(duration=9.0), t0=time.time() + 0.5)
    recorder = RoomRecorder(Path({root!r}), "S-crash", "vp8", {{"kind": "visit"}})
    recorder.start()
    print("start", items[0][2], flush=True)
    for kind, packet, arrival in items:
        delay = arrival - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        recorder.on_packet("kiosk", kind, packet, arrival)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_sigkill_leaves_a_playable_file_that_recovery_closes(tmp_path: Path) -> None:
    script = CHILD.format(tests=str(Path(__file__).parent), root=str(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        first_arrival = float(child.stdout.readline().split()[1])
        time.sleep(max(0.0, first_arrival + 5.0 - time.time()))
        child.send_signal(signal.SIGKILL)
        killed_at = time.time()
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    recorded = killed_at - first_arrival

    [media] = list((tmp_path / "S-crash").glob("*/*.webm"))
    frames = 0
    with av.open(str(media)) as container:  # opens and decodes without an index/trailer
        for _ in container.decode(video=0):
            frames += 1
    duration, _ = probe_media(media)
    print(f"killed after {recorded:.2f} s of media; file readable to {duration:.2f} s")
    assert duration >= recorded - 2.0, (duration, recorded)
    assert frames >= (recorded - 2.0) * 30 * 0.95

    original = media.read_bytes()
    assert not read_index(media).cue_times_s  # the muxer writes Cues only when it closes

    [result] = recover(tmp_path)
    assert result.state == "recovered (truncated)"
    entry, copy = result.data["files"]
    assert entry["state"] == "recovered (truncated)"
    assert entry["duration_s"] >= recorded - 2.0
    assert entry["sha256"]
    # The truncated original is evidence: kept byte for byte, hashed as it is.
    assert media.read_bytes() == original
    # Its readable part is copied, not transcoded, into a seekable file of its own.
    assert copy["derived_from"] == media.name
    assert copy["path"] == "kiosk-000.recovered.webm"
    assert copy["sha256"]
    assert copy["sha256"] != entry["sha256"]
    assert copy["frames"] == entry["frames"]
    assert copy["duration_s"] == pytest.approx(entry["duration_s"], abs=0.05)
    remuxed = media.parent / copy["path"]
    index = read_index(remuxed)
    assert index.cue_times_s, "the recovered copy has no Cues"
    assert index.duration_s is not None
    assert index.duration_s >= recorded - 2.0
    for target in (index.duration_s / 2, index.duration_s - 0.3):
        landed = seek_video(remuxed, target)
        assert target - 2.1 <= landed <= target, (target, landed)
    assert _video_payloads(remuxed) == _video_payloads(media)  # the same bytes, not re-encoded
    assert sorted(p.name for p in media.parent.iterdir()) == [
        "kiosk-000.recovered.webm",
        "kiosk-000.webm",
        "manifest.json",
    ]
    assert not (media.parent / "recording.open").exists()
    assert json.loads(result.path.read_text())["state"] == ("recovered (truncated)")
    assert verify(tmp_path) == []
    assert recover(tmp_path) == []  # nothing left to recover


def _video_payloads(path: Path) -> list[bytes]:
    payloads = []
    with av.open(str(path)) as container, contextlib.suppress(av.FFmpegError):  # truncated tail
        payloads.extend(bytes(p) for p in container.demux(video=0) if p.size)
    return payloads


async def test_recovery_adopts_a_copy_an_interrupted_recovery_left_and_writes_nothing_over(
    tmp_path: Path, source: list[Encoded]
) -> None:
    # A closed file stands in for the killed one; the first recovery died after renaming
    # its copy into place and before writing the manifest.
    session = tmp_path / "S-again"
    session.mkdir()
    await _session(tmp_path, "S-src", source)
    [closed] = list((tmp_path / "S-src").glob("*/*.webm"))
    original = session / "kiosk-000.webm"
    original.write_bytes(closed.read_bytes())
    left_behind = session / "kiosk-000.recovered.webm"
    remux(original, left_behind)
    copy_bytes = left_behind.read_bytes()
    entry = {"path": original.name, "peer": "kiosk", "segment": 0, "frames": {}}
    entry |= {"state": "recording", "sha256": None, "started_at": None}
    manifest = {"schema": 1, "session": "S-again", "state": "open", "files": [entry]}
    (session / "manifest.json").write_text(json.dumps(manifest))

    [result] = [m for m in recover(tmp_path) if m.session == "S-again"]

    listed, copy = result.data["files"]
    assert listed["path"] == original.name
    assert copy["derived_from"] == original.name
    assert left_behind.read_bytes() == copy_bytes  # adopted, not rewritten
    assert copy["sha256"] == hashlib.sha256(copy_bytes).hexdigest()
    assert copy["duration_s"] == pytest.approx(listed["duration_s"], abs=0.05)
    assert not list(session.glob("*.tmp"))


def test_recovery_without_readable_media_keeps_the_file_and_makes_no_copy(tmp_path: Path) -> None:
    session = tmp_path / "S-empty"
    session.mkdir()
    (session / "kiosk-000.webm").write_bytes(b"\x1a\x45\xdf\xa3 killed before a header")
    manifest = {"schema": 1, "session": "S-empty", "state": "open", "files": []}
    (session / "manifest.json").write_text(json.dumps(manifest))

    [result] = recover(tmp_path)

    [entry] = result.data["files"]  # listed as found, hashed, no derived copy
    assert (entry["path"], entry["state"]) == ("kiosk-000.webm", "recovered (truncated)")
    assert entry["sha256"]
    assert sorted(p.name for p in session.iterdir()) == ["kiosk-000.webm", "manifest.json"]


async def test_recovery_leaves_a_live_recording_alone(
    tmp_path: Path, source: list[Encoded]
) -> None:
    recorder = RoomRecorder(tmp_path, "S-live", "vp8", {"kind": "visit"})
    recorder.start()
    for k, packet, arrival in packets_for(source, t0=time.time(), until=2.5):
        recorder.on_packet("p1", k, packet, arrival)
    for _ in range(100):  # the writer thread takes the marker's lock
        if list((tmp_path / "S-live").glob("*/recording.open")):
            break
        await asyncio.sleep(0.01)
    assert recover(tmp_path) == []
    manifest = await recorder.close()
    assert manifest.state == "closed"
    assert verify(tmp_path) == []


async def test_media_is_forced_to_disk_while_recording_and_at_close(
    tmp_path: Path, source: list[Encoded], monkeypatch: Any
) -> None:
    # a power cut must not take more than about a second of the evidence: the writer fsyncs
    # what the muxer wrote as it goes (every second; here every frame) and when the file ends
    from recorder import segment

    synced: list[tuple[str, bool]] = []  # (path, file still being written)
    real_fsync = os.fsync
    writing = {"open": True}

    def spy(fd: int) -> None:
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), writing["open"]))
        real_fsync(fd)

    monkeypatch.setattr(segment, "SYNC_INTERVAL_S", 0.0)
    monkeypatch.setattr(segment.os, "fsync", spy)
    recorder = RoomRecorder(tmp_path, "S-1", "vp8", {"kind": "visit", "participants": {}})
    recorder.start()
    for k, packet, arrival in packets_for(source, t0=time.time(), until=2.5):
        recorder.on_packet("p1", k, packet, arrival)
    await asyncio.sleep(1.0)  # the writer thread muxes what it was given
    media_synced_while_open = {p for p, still in synced if p.endswith(".webm")}
    writing["open"] = False
    manifest = await recorder.close()
    media = str(manifest.path.parent / manifest.data["files"][0]["path"])
    assert media in media_synced_while_open
    assert (media, False) in synced  # again once closed (trailer, cues)
    assert str(manifest.path.parent) in {p for p, _ in synced}  # its directory entry
