"""`petition-gateway recordings verify --dir COPY --head HASH:N`: a copy checked offline."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from synthetic_media import Encoded, packets_for

from gateway.cli import main
from recorder.chain import CHAIN_FILE
from recorder.room import RoomRecorder


async def _record(root: Path, session: str, source: list[Encoded]) -> None:
    recorder = RoomRecorder(root, session, "vp8", {"kind": "visit", "participants": {}})
    recorder.start()
    for k, packet, arrival in packets_for(source, t0=time.time(), until=1.2):
        recorder.on_packet("p1", k, packet, arrival)
    await recorder.close()


async def test_a_copy_verifies_offline_against_the_head_noted_earlier(
    tmp_path: Path,
    source: list[Encoded],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))
    root = tmp_path / "recordings"
    for session in ("S-1", "S-2"):
        await _record(root, session, source)
    head = json.loads((root / CHAIN_FILE).read_text().splitlines()[-1])
    noted = f"{head['chain']}:{head['n']}"

    copy = tmp_path / "archive"
    shutil.copytree(root, copy)
    assert main(["recordings", "verify", "--dir", str(copy), "--head", noted]) == 0
    out = capsys.readouterr().out
    assert f"chain head: {noted}" in out
    assert "all recordings and the manifest chain verify" in out

    # the newest session removed from the copy, with its chain line
    shutil.rmtree(copy / "S-2")
    lines = (copy / CHAIN_FILE).read_text().splitlines()
    (copy / CHAIN_FILE).write_text(lines[0] + "\n")
    assert main(["recordings", "verify", "--dir", str(copy), "--head", noted, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert [p["problem"] for p in report["problems"]] == ["chain_truncated"]

    assert main(["recordings", "verify", "--dir", str(copy), "--head", "nonsense"]) == 2
    assert "'nonsense'" in capsys.readouterr().err
