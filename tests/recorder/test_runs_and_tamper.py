"""Recording runs never overwrite each other, and every kind of tampering is detected.

The database's view (:class:`recorder.verify.Expected`) is built here from the manifests the
recorder returned, as the hub's keeper stores them; the end-to-end tests check the same
through the real keeper and ``petition-gateway recordings verify``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from synthetic_media import Encoded, packets_for

from config.errors import RecorderError
from recorder.chain import CHAIN_FILE, link_hash
from recorder.layout import RUNS_FILE, read_runs
from recorder.manifest import RoomManifest
from recorder.retention import RETENTION_LOG
from recorder.room import RoomRecorder
from recorder.verify import Anchor, Expected, check, verify


async def _run(
    root: Path, session: str, source: list[Encoded], peers: tuple[str, ...]
) -> RoomManifest:
    recorder = RoomRecorder(root, session, "vp8", {"kind": "visit", "participants": {}})
    recorder.start()
    for k, packet, arrival in packets_for(source, t0=time.time(), until=1.6):
        for peer in peers:
            recorder.on_packet(peer, k, packet, arrival)
    return await recorder.close()


def _expected(manifests: list[RoomManifest]) -> Expected:
    runs = {}
    files = {}
    for m in manifests:
        base = f"{m.session}/{m.run}"
        runs[m.chain_hash] = f"{base}/manifest.json"
        for f in m.data["files"]:
            files[f"{base}/{f['path']}"] = (f["sha256"], False)
    newest = max(manifests, key=lambda m: m.chain_index)
    return Expected(Anchor(newest.chain_hash, newest.chain_index), runs, files)


async def test_a_second_run_of_a_session_keeps_the_first(
    tmp_path: Path, source: list[Encoded]
) -> None:
    # recording turned off and on twice in one visit: three runs, nothing overwritten
    runs = [await _run(tmp_path, "S-1", source, ("kiosk", "officer")) for _ in range(3)]

    assert len({m.run for m in runs}) == 3
    assert [m.chain_index for m in runs] == [1, 2, 3]
    media = sorted((tmp_path / "S-1").glob("*/*.webm"))
    assert len(media) == 6  # two participants in each of three runs
    assert {p.name for p in media} == {"kiosk-000.webm", "officer-000.webm"}
    hashes = {m.run: {f["path"]: f["sha256"] for f in m.data["files"]} for m in runs}
    for m in runs:  # each run's files are still the bytes its manifest hashed
        for name, digest in hashes[m.run].items():
            assert (m.path.parent / name).stat().st_size > 0
            assert digest
    assert [r["run"] for r in read_runs(tmp_path / "S-1")] == [m.run for m in runs]
    report = check(tmp_path, expected=_expected(runs))
    assert report.problems == []
    assert (report.runs, report.files, report.sessions) == (3, 6, 1)
    assert report.head == Anchor(runs[-1].chain_hash, 3)


async def test_a_run_id_is_never_reused(tmp_path: Path, source: list[Encoded]) -> None:
    first = await _run(tmp_path, "S-1", source, ("p1",))
    again = RoomRecorder(tmp_path, "S-1", "vp8", {"kind": "visit"}, run=first.run)
    again.start()
    for k, packet, arrival in packets_for(source, t0=time.time(), until=1.0):
        again.on_packet("p1", k, packet, arrival)
    with pytest.raises(RecorderError, match="exists already"):
        await again.close()
    # the run's files and manifest are what the first recorder left, and still verify
    assert verify(tmp_path) == []
    assert json.loads(first.path.read_bytes())["files"] == first.data["files"]


@pytest.fixture(scope="module")
def recorded(
    tmp_path_factory: pytest.TempPathFactory, source: list[Encoded]
) -> tuple[Path, Expected]:
    """Three sessions, the second recorded in two runs; built once, copied per case."""
    import asyncio

    root = tmp_path_factory.mktemp("recordings")

    async def build() -> list[RoomManifest]:
        made = [await _run(root, "S-1", source, ("p1", "p2"))]
        made.append(await _run(root, "S-2", source, ("p1",)))
        made.append(await _run(root, "S-2", source, ("p1",)))
        made.append(await _run(root, "S-3", source, ("p1",)))
        return made

    manifests = asyncio.run(build())
    return root, _expected(manifests)


def _media(root: Path, session: str) -> list[Path]:
    return sorted((root / session).glob("*/*.webm"))


def _flip(root: Path) -> None:
    victim = _media(root, "S-1")[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))


def _truncate(root: Path) -> None:
    victim = _media(root, "S-1")[0]
    victim.write_bytes(victim.read_bytes()[:-100])


def _append(root: Path) -> None:
    with _media(root, "S-1")[0].open("ab") as handle:
        handle.write(b"\0" * 10)


def _delete_file(root: Path) -> None:
    _media(root, "S-2")[0].unlink()


def _delete_newest_session(root: Path) -> None:
    shutil.rmtree(root / "S-3")
    chain = root / CHAIN_FILE
    lines = chain.read_text().splitlines()
    chain.write_text("\n".join(lines[:-1]) + "\n")


def _swap(root: Path) -> None:
    first, second = _media(root, "S-1")
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)


def _edit_manifest(root: Path) -> None:
    manifest = next((root / "S-2").glob("*/manifest.json"))
    data = json.loads(manifest.read_bytes())
    data["participants"] = {"p1": {"name": "someone else"}}
    manifest.write_text(json.dumps(data))


def _edit_chain(root: Path) -> None:
    chain = root / CHAIN_FILE
    lines = [json.loads(line) for line in chain.read_text().splitlines()]
    lines[1]["at"] = "2020-01-01T00:00:00.000Z"
    lines[1]["manifest_sha256"] = "0" * 64
    chain.write_text("".join(json.dumps(x, sort_keys=True) + "\n" for x in lines))


def _reorder_chain(root: Path) -> None:
    chain = root / CHAIN_FILE
    lines = chain.read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    chain.write_text("\n".join(lines) + "\n")


def _forge_run(root: Path) -> None:
    # a whole run made up afterwards, with a correct link: only the database can tell
    source = next(p for p in (root / "S-3").glob("r*") if p.is_dir())
    forged = root / "S-3" / "r20991231T000000Z-deadbeef"
    shutil.copytree(source, forged)
    data = json.loads((forged / "manifest.json").read_bytes())
    data["run"] = forged.name
    payload = json.dumps(data).encode()
    (forged / "manifest.json").write_bytes(payload)
    import hashlib

    chain = root / CHAIN_FILE
    last = json.loads(chain.read_text().splitlines()[-1])
    digest = hashlib.sha256(payload).hexdigest()
    line = {
        "session": "S-3",
        "run": forged.name,
        "n": last["n"] + 1,
        "manifest_sha256": digest,
        "previous": last["chain"],
        "chain": link_hash(last["chain"], digest),
        "at": last["at"],
    }
    with chain.open("a") as handle:
        handle.write(json.dumps(line, sort_keys=True) + "\n")


def _unlisted_file(root: Path) -> None:
    run = next(p for p in (root / "S-1").glob("r*") if p.is_dir())
    (run / "extra-000.webm").write_bytes(b"\x1a\x45\xdf\xa3")


def _forged_retention(root: Path) -> None:
    victim = _media(root, "S-2")[0]
    victim.unlink()
    line = {
        "session": "S-2",
        "path": f"{victim.parent.name}/{victim.name}",
        "kind": "visit",
        "bytes": 1,
        "sha256": None,
        "ended_at": "2020-01-01T00:00:00.000Z",
        "deleted_at": "2020-01-02T00:00:00.000Z",
    }
    (root / RETENTION_LOG).write_text(json.dumps(line) + "\n")


def _delete_middle_run(root: Path) -> None:
    shutil.rmtree(sorted(p for p in (root / "S-2").glob("r*") if p.is_dir())[0])


def _runs_file(root: Path) -> None:
    # the session's list of runs is informative; the chain and the database decide
    (root / "S-2" / RUNS_FILE).write_text("")


CASES: dict[str, tuple[Callable[[Path], None], set[str]]] = {
    "flip a byte": (_flip, {"changed"}),
    "truncate": (_truncate, {"changed"}),
    "append": (_append, {"changed"}),
    "delete a file": (_delete_file, {"missing_file"}),
    "delete the newest session and its chain line": (_delete_newest_session, {"chain_truncated"}),
    "swap two files": (_swap, {"changed"}),
    "edit a manifest": (_edit_manifest, {"manifest_changed"}),
    "edit the chain": (_edit_chain, {"chain_broken"}),
    "reorder the chain": (_reorder_chain, {"chain_broken"}),
    "forge a whole run": (_forge_run, {"unanchored_entry"}),
    "add a media file": (_unlisted_file, {"unlisted_file"}),
    "claim retention deleted a file": (_forged_retention, {"missing_file"}),
    "delete a run": (_delete_middle_run, {"missing_manifest"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_detected(tmp_path: Path, recorded: tuple[Path, Expected], case: str) -> None:
    original, expected = recorded
    root = tmp_path / "copy"
    shutil.copytree(original, root)
    assert check(root, expected=expected).problems == []

    tamper, problems = CASES[case]
    tamper(root)
    report = check(root, expected=expected)
    found = {p.problem for p in report.problems}
    assert problems <= found, report.problems
    assert all(p.detail for p in report.problems)


def test_deleting_the_newest_session_is_seen_against_a_head_noted_offline(
    tmp_path: Path, recorded: tuple[Path, Expected]
) -> None:
    original, expected = recorded
    root = tmp_path / "copy"
    shutil.copytree(original, root)
    head = check(root).head
    assert head is not None
    assert expected.head == head
    _delete_newest_session(root)
    assert verify(root) == []  # the chain alone cannot tell: its remaining links hold
    problems = check(root, expected=Expected(head=head)).problems
    assert [(p.problem, p.path) for p in problems] == [("chain_truncated", CHAIN_FILE)]
    assert f"{head.length}" in problems[0].detail


def test_the_session_list_of_runs_is_not_what_verify_trusts(
    tmp_path: Path, recorded: tuple[Path, Expected]
) -> None:
    original, expected = recorded
    root = tmp_path / "copy"
    shutil.copytree(original, root)
    _runs_file(root)
    assert check(root, expected=expected).problems == []


def test_the_chain_is_read_from_where_a_reader_stopped(
    tmp_path: Path, recorded: tuple[Path, Expected]
) -> None:
    from recorder.chain import read_chain, read_chain_from

    original, _ = recorded
    every = read_chain(original)
    first, offset = read_chain_from(original, 0, 0)
    assert first == every
    assert read_chain_from(original, offset, len(first)) == ([], offset)
    # a line being appended (no newline yet) waits for the next read
    root = tmp_path / "copy"
    shutil.copytree(original, root)
    with (root / CHAIN_FILE).open("a") as handle:
        handle.write('{"session": "S-9"')
    assert read_chain_from(root, offset, len(first)) == ([], offset)
