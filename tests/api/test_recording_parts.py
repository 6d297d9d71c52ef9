"""A session's recordings say which part of whose recording each file is (for /library)."""

from __future__ import annotations

from gateway.recordings import RecordingsKeeper
from records import sessions
from records.enums import SessionKind
from signaling.bus import MemoryBus
from signaling.bus_messages import RecordingClosed
from tests.helpers import Api
from web import keys

UNIT = "QX-XFJ-JDZX"


def _file(path: str, segment: int, reason: str, **more: object) -> dict[str, object]:
    return {
        "path": path,
        "peer": "p1",
        "segment": segment,
        "codecs": {"video": "vp8", "audio": "opus"},
        "started_at": "2026-12-07T08:00:00.000Z",
        "ended_at": "2026-12-07T08:30:00.000Z",
        "frames": {"video": 10, "audio": 10},
        "bytes": 100,
        "sha256": "ab" * 32,
        "state": "closed",
        "reason": reason,
        **more,
    }


async def test_parts_reasons_and_recovered_copies_reach_the_session_api(api: Api) -> None:
    async with api.seed.store.transaction() as tx:
        s = await sessions.create_session(
            tx, kind=SessionKind.VISIT, unit_id=api.seed.units[UNIT], recorded=True
        )
    recovered = "recovered (truncated)"
    files = [
        _file("p1-000.webm", 0, "start"),
        _file("p1-001.webm", 1, "rotation", state=recovered),
        _file(
            "p1-001.recovered.webm",
            1,
            "recovery_remux",
            state=recovered,
            derived_from="p1-001.webm",
        ),
    ]
    keeper = RecordingsKeeper(api.app[keys.SETTINGS], api.seed.store, MemoryBus(), sweep=False)
    await keeper.apply(
        RecordingClosed(session_id=s.id, run=None, manifest_sha256="", chain_hash="", files=files)
    )
    await keeper.close()

    resp = await api.client.get(f"/api/sessions/{s.id}", headers=await api.login("reception"))
    assert resp.status == 200, await resp.text()
    recs = (await resp.json())["recordings"]
    by_path = {r.path: r.id for r in await _rows(api, s.id)}
    parts = [
        (r["segment"], r["reason"], r["state"], r["derived_from"])
        for r in sorted(recs, key=lambda r: r["id"])
    ]
    assert parts == [
        (0, "start", "closed", None),
        (1, "rotation", recovered, None),
        (1, "recovery_remux", recovered, by_path[f"{s.id}/p1-001.webm"]),
    ]


async def _rows(api: Api, session_id: str) -> list[sessions.RecordingInfo]:
    async with api.seed.store.transaction() as tx:
        return await sessions.recordings_of(tx, session_id)
