"""The hub's side of recordings: database rows from the workers' recording events, retention.

Media workers cannot write the database (they talk to the hub only through the bus), so every
recording event (``recording.file_started``, ``recording.file_closed``, ``recording.closed``)
arrives on the ``recording.events`` channel and is written here. Writes are idempotent (by
file path), so several hubs receiving the same event agree.

Retention: once an hour the sweeper deletes expired media files (in a thread), keeps the
manifests and hashes, marks the rows deleted and writes each deletion to the audit log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import shutil
import time
from typing import Any

from config import errors
from config.settings import Settings
from records import accounts, sessions
from records.enums import SessionKind
from records.store import Store
from signaling.bus import Bus, Message, Subscription

logger = logging.getLogger(__name__)

RECORDING_EVENTS = "recording.events"
PLAYBACK_NAME = "playback.mp4"
SWEEP_INTERVAL_S = 3600.0


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _frames(file: dict[str, Any]) -> int:
    frames = file.get("frames") or {}
    if isinstance(frames, dict):
        return int(sum(int(v) for v in frames.values() if isinstance(v, int | float)))
    return 0


class RecordingsKeeper:
    """Writes recording events to the database and runs the retention sweeper."""

    def __init__(self, settings: Settings, store: Store, bus: Bus, *, sweep: bool = True) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self._sweep_enabled = sweep
        self._sub: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._token = f"keeper-{secrets.token_hex(6)}"

    async def start(self) -> None:
        """Subscribe to recording events and start the sweeper."""
        self._sub = await self.bus.subscribe(RECORDING_EVENTS)
        self._tasks.append(asyncio.create_task(self._consume(self._sub), name="recordings-events"))
        if self._sweep_enabled:
            self._tasks.append(asyncio.create_task(self._sweeper(), name="recordings-sweeper"))

    async def close(self) -> None:
        """Store what is already received (up to 5 s), then stop; idempotent."""
        if self._sub is not None:
            pending = getattr(self._sub, "pending", None)
            deadline = time.monotonic() + 5.0
            # polling: the subscription has no "drained" event, and this runs once at shutdown
            while callable(pending) and pending() and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.05)  # let the consumer finish the message it holds
            await self._sub.close()
            self._sub = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _consume(self, sub: Subscription) -> None:
        async for event in sub:
            try:
                await self.apply(event)
            except errors.GatewayError as exc:
                logger.error("recording event %s not stored: %s", event.get("type"), exc)

    async def apply(self, event: Message) -> None:
        """Store one recording event."""
        etype = event.get("type")
        session_id = str(event.get("session", ""))
        if not session_id:
            return
        if etype in ("recording.file_started", "recording.file_closed"):
            await self._file(session_id, dict(event.get("file") or {}), str(event.get("peer", "")))
        elif etype == "recording.closed":
            for file in event.get("files") or []:
                if isinstance(file, dict):
                    await self._file(session_id, file, str(file.get("peer", "")))
            await self._compose_if_training(session_id)
            async with self.store.transaction() as tx:
                await sessions.save_manifest(
                    tx,
                    session_id,
                    f"{session_id}/manifest.json",
                    str(event.get("manifest_sha256", "")),
                    str(event.get("chain_hash", "")),
                )
                await sessions.log_event(
                    tx, session_id, "recording_closed", data={"chain_hash": event.get("chain_hash")}
                )
        elif etype == "recording.error":
            async with self.store.transaction() as tx:
                await sessions.log_event(
                    tx,
                    session_id,
                    "recording_error",
                    data={"peer": event.get("peer"), "error": str(event.get("error"))[:300]},
                )

    async def _compose_if_training(self, session_id: str) -> None:
        """Training recordings form the video-on-demand library: one composed playback file.

        Composition (a grid of participants, audio mixed, by ffmpeg) runs in a child process
        driven from a worker thread, never on the event loop. One hub of a cluster does it: the
        bus lock ``compose:<session>`` decides which.
        """
        async with self.store.transaction() as tx:
            try:
                s = await sessions.get_session(tx, session_id)
            except errors.NotFound:
                return
        if s.kind is not SessionKind.TRAINING:
            return
        if shutil.which("ffmpeg") is None:
            logger.warning("session %s: no ffmpeg here, no composed playback file", session_id)
            return
        if not await self.bus.acquire(f"compose:{session_id}", self._token, 3600):
            return
        task = asyncio.create_task(self._compose(session_id), name=f"compose-{session_id}")
        self._tasks.append(task)

    async def _compose(self, session_id: str) -> None:
        from recorder.manifest import sha256_file  # noqa: PLC0415
        from recorder.playback import compose  # noqa: PLC0415

        session_dir = self.settings.recordings_dir / session_id
        output = session_dir / PLAYBACK_NAME
        try:
            await asyncio.to_thread(compose, session_dir, output, timeout=3600)
            digest = await asyncio.to_thread(sha256_file, output)
            size = output.stat().st_size
        except (errors.GatewayError, OSError) as exc:
            logger.error("session %s: composing the playback file failed: %s", session_id, exc)
            return
        async with self.store.transaction() as tx:
            await sessions.upsert_recording(
                tx,
                session_id,
                f"{session_id}/{PLAYBACK_NAME}",
                participant_id=None,
                codec="h264+aac",
                bytes=size,
                sha256=digest,
                state="playback",
            )
            await sessions.log_event(tx, session_id, "playback_composed", data={"sha256": digest})
        logger.info("session %s: playback file composed (%d bytes)", session_id, size)

    async def _file(self, session_id: str, file: dict[str, Any], peer: str) -> None:
        name = file.get("path")
        if not isinstance(name, str) or not name:
            return
        codecs = file.get("codecs") or {}
        fields: dict[str, Any] = {
            "participant_id": peer or None,
            "codec": "+".join(str(v) for v in codecs.values()) if isinstance(codecs, dict) else "",
            "started_at": _time(file.get("started_at")),
            "ended_at": _time(file.get("ended_at")),
            "frames": _frames(file),
            "bytes": int(file.get("bytes") or 0),
            "sha256": str(file.get("sha256") or ""),
            "state": str(file.get("state") or "open"),
        }
        try:
            async with self.store.transaction() as tx:
                await sessions.upsert_recording(tx, session_id, f"{session_id}/{name}", **fields)
        except errors.Conflict:
            # another hub inserted the same row at the same moment: write again as an update
            async with self.store.transaction() as tx:
                await sessions.upsert_recording(tx, session_id, f"{session_id}/{name}", **fields)

    async def _sweeper(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except errors.GatewayError as exc:
                logger.error("retention sweep failed: %s", exc)
            await asyncio.sleep(SWEEP_INTERVAL_S)

    async def sweep_once(self, now: float | None = None) -> int:
        """Delete expired media now; returns how many files were deleted."""
        from recorder.retention import sweep  # noqa: PLC0415

        days = {k: float(v) for k, v in self.settings.retention_days.items()}
        deleted = await asyncio.to_thread(
            sweep, self.settings.recordings_dir, days, time.time() if now is None else now
        )
        for d in deleted:
            path = f"{d.session}/{d.path}"
            async with self.store.transaction() as tx:
                await sessions.upsert_recording(
                    tx, d.session, path, deleted_at=dt.datetime.now(dt.UTC)
                )
                row = next(
                    (r for r in await sessions.recordings_of(tx, d.session) if r.path == path), None
                )
                await accounts.audit(
                    tx,
                    "retention",
                    "recording_delete",
                    "recording",
                    str(row.id) if row else "",
                    detail={
                        "path": path,
                        "kind": d.kind,
                        "bytes": d.bytes,
                        "sha256": d.sha256,
                        "ended_at": d.ended_at,
                    },
                )
        return len(deleted)
