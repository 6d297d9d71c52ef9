"""The hub's side of recordings: database rows from the workers' recording events, retention.

Media workers cannot write the database (they talk to the hub only through the bus), so every
recording event (``recording.file_started``, ``recording.file_closed``, ``recording.closed``)
arrives on the ``recording.events`` channel and is written here. Writes are idempotent (by
file path and chain hash), so several hubs receiving the same event agree.

The bus delivers at most once: an event sent while no hub listens is lost. What matters is
on disk anyway: every finalised run is a line of the chain with its manifest. So the keeper
also **reconciles**: at start and every :data:`RECONCILE_INTERVAL_S` it reads the chain lines
it has not seen and stores any run the database lacks, exactly as if its event had come.
A finalised run's file rows, its run row (chain hash and position: the anchored head of the
chain) and the honest end of a session a crash interrupted are written in one transaction.

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
from pathlib import Path
from typing import Any

import pydantic

from config import errors
from config.settings import Settings
from records import accounts, recordings, sessions
from records.enums import SessionKind
from records.store import Store
from signaling import bus_messages as B
from signaling.bus import Bus, Subscription

logger = logging.getLogger(__name__)

PLAYBACK_NAME = "playback.mp4"
SWEEP_INTERVAL_S = 3600.0
#: how often the chain on disk is compared with the database (a lost event is stored then)
RECONCILE_INTERVAL_S = 30.0


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _relative(session_id: str, run: str | None, name: str) -> str:
    """A run's file as the database names it: relative to the recordings root."""
    return f"{session_id}/{name}" if run is None else f"{session_id}/{run}/{name}"


def _read_run_manifest(root: Path, session_id: str, run: str | None) -> dict[str, Any]:
    from recorder.layout import run_dir  # noqa: PLC0415
    from recorder.manifest import read_manifest  # noqa: PLC0415

    return read_manifest(run_dir(root, session_id, run).path)


def _file_fields(
    file: dict[str, Any], peer: str, session_id: str, run: str | None
) -> dict[str, Any]:
    codecs = file.get("codecs") or {}
    derived_from = file.get("derived_from")
    return {
        "participant_id": peer or None,
        "codec": "+".join(str(v) for v in codecs.values()) if isinstance(codecs, dict) else "",
        "started_at": _time(file.get("started_at")),
        "ended_at": _time(file.get("ended_at")),
        "frames": _frames(file),
        "bytes": int(file.get("bytes") or 0),
        "sha256": str(file.get("sha256") or ""),
        "state": str(file.get("state") or "open"),
        "segment": file["segment"] if isinstance(file.get("segment"), int) else None,
        "reason": str(file.get("reason") or "")[:24],
        "derived_from": (
            _relative(session_id, run, derived_from)
            if isinstance(derived_from, str) and derived_from
            else None
        ),
    }


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
        self._closing_lock = asyncio.Lock()  # a run's event and the reconciler never race
        self._chain_seen = 0  # chain lines already compared with the database...
        self._chain_offset = 0  # ...and where they end in the file
        self._applying = 0  # events being stored now

    async def start(self) -> None:
        """Subscribe to recording events and start the sweeper."""
        self._sub = await self.bus.subscribe(B.RECORDING_EVENTS)
        self._tasks.append(asyncio.create_task(self._consume(self._sub), name="recordings-events"))
        self._tasks.append(asyncio.create_task(self._reconciler(), name="recordings-reconcile"))
        if self._sweep_enabled:
            self._tasks.append(asyncio.create_task(self._sweeper(), name="recordings-sweeper"))

    async def close(self) -> None:
        """Store what is already received (up to 5 s), then stop; idempotent.

        Runs finalised while this hub shuts down but whose events did not arrive in time are
        stored by the last reconciliation here (or by the next hub's first).
        """
        if self._sub is not None:
            pending = getattr(self._sub, "pending", None)
            deadline = time.monotonic() + 5.0
            # polling: the subscription has no "drained" event, and this runs once at shutdown
            while time.monotonic() < deadline and (  # noqa: ASYNC110
                self._applying or (callable(pending) and pending())
            ):
                await asyncio.sleep(0.02)
            await self._sub.close()
            self._sub = None
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()
            try:
                await self.reconcile()
            except (errors.GatewayError, OSError) as exc:
                logger.error("recordings: last reconciliation failed: %s", exc)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _consume(self, sub: Subscription) -> None:
        async for raw in sub:
            try:
                event = B.RECORDING_EVENT_ADAPTER.validate_python(raw)
            except pydantic.ValidationError as exc:
                logger.error("recording event %s dropped: %s", raw.get("type"), exc)
                continue
            self._applying += 1
            try:
                await self.apply(event)
            except errors.GatewayError as exc:
                logger.error("recording event %s not stored: %s", event.type, exc)
            finally:
                self._applying -= 1

    async def apply(self, event: B.RecordingEvent) -> None:
        """Store one recording event."""
        session_id = event.session_id
        if not session_id:
            return
        run = getattr(event, "run", None) or None
        if isinstance(event, B.RecordingFileStarted | B.RecordingFileClosed):
            await self._file(session_id, run, dict(event.file), event.peer)
        elif isinstance(event, B.RecordingClosed):
            async with self._closing_lock:
                new = await self._run_closed(session_id, run, event)
            if new:
                await self._compose_if_training(session_id, run)
        elif isinstance(event, B.RecordingError):
            async with self.store.transaction() as tx:
                await sessions.log_event(
                    tx,
                    session_id,
                    "recording_error",
                    data={"run": run, "peer": event.peer, "error": event.error[:300]},
                )

    async def _run_closed(self, session_id: str, run: str | None, event: B.RecordingClosed) -> bool:
        """A finalised run: its files, its place in the chain, the session's honest end."""
        files = [f for f in event.files if isinstance(f, dict)]
        chain_hash = event.chain_hash
        index = event.chain_index
        info = recordings.RunInfo(
            session_id=session_id,
            run_id=run or "",
            path=_relative(session_id, run, "manifest.json"),
            sha256=event.manifest_sha256,
            chain_hash=chain_hash,
            previous_chain_hash=event.previous_chain_hash,
            chain_index=index if index is not None and index > 0 else None,
            state="recovered" if event.recovered else "closed",
        )
        ends = [t for f in files if (t := _time(f.get("ended_at"))) is not None]

        async def write() -> bool:
            async with self.store.transaction() as tx:
                for file in files:
                    await sessions.upsert_recording(
                        tx,
                        session_id,
                        _relative(session_id, run, str(file.get("path", ""))),
                        **_file_fields(file, str(file.get("peer") or ""), session_id, run),
                    )
                new = await recordings.save_run(tx, info)
                if new:
                    await sessions.log_event(
                        tx,
                        session_id,
                        "recording_closed",
                        data={
                            "run": run,
                            "chain_hash": chain_hash,
                            "chain_index": info.chain_index,
                        },
                    )
                if ends:
                    await recordings.extend_interrupted(tx, session_id, max(ends))
                return new

        try:
            return await write()
        except errors.Conflict:
            # another hub stored the same run at the same moment: now it is an update
            return await write()

    async def _reconciler(self) -> None:
        while True:
            try:
                await self.reconcile()
            except (errors.GatewayError, OSError) as exc:
                logger.error("recordings: reconciling the chain with the database failed: %s", exc)
            await asyncio.sleep(RECONCILE_INTERVAL_S)

    async def reconcile(self) -> int:
        """Store every chained run the database lacks (lost events); returns how many."""
        from recorder.chain import read_chain_from  # noqa: PLC0415

        root = self.settings.recordings_dir
        fresh, offset = await asyncio.to_thread(
            read_chain_from, root, self._chain_offset, self._chain_seen
        )
        if not fresh:
            return 0
        async with self.store.transaction() as tx:
            known = await recordings.known_chain_hashes(tx)
        stored = 0
        for entry in fresh:
            if entry.chain in known:
                continue
            try:
                data = await asyncio.to_thread(_read_run_manifest, root, entry.session, entry.run)
            except (OSError, ValueError) as exc:
                logger.error(
                    "recordings: chain line %d (%s) has no readable manifest: %s",
                    entry.index,
                    entry.session,
                    exc,
                )
                continue
            event = B.RecordingClosed(
                session_id=entry.session,
                run=entry.run,
                chain_index=entry.index,
                manifest_sha256=entry.manifest_sha256,
                chain_hash=entry.chain,
                previous_chain_hash=entry.previous,
                files=data.get("files", []),
                recovered=data.get("state") != "closed",
            )
            try:
                await self.apply(event)
            except errors.NotFound:
                logger.error("recordings: chained session %s is not in the database", entry.session)
                continue
            stored += 1
        self._chain_seen += len(fresh)
        self._chain_offset = offset
        if stored:
            logger.warning("recordings: stored %d run(s) whose events were lost", stored)
        return stored

    async def _compose_if_training(self, session_id: str, run: str | None) -> None:
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
        if not await self.bus.acquire(f"compose:{session_id}:{run}", self._token, 3600):
            return
        task = asyncio.create_task(self._compose(session_id, run), name=f"compose-{session_id}")
        self._tasks.append(task)

    async def _compose(self, session_id: str, run: str | None) -> None:
        from recorder.manifest import sha256_file  # noqa: PLC0415
        from recorder.playback import compose  # noqa: PLC0415

        session_dir = self.settings.recordings_dir / session_id
        # one composition per finalised run, of every run so far; never written over
        name = PLAYBACK_NAME if run is None else f"playback-{run}.mp4"
        output = session_dir / name
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
                f"{session_id}/{name}",
                participant_id=None,
                codec="h264+aac",
                bytes=size,
                sha256=digest,
                state="playback",
            )
            await sessions.log_event(tx, session_id, "playback_composed", data={"sha256": digest})
        logger.info("session %s: playback file composed (%d bytes)", session_id, size)

    async def _file(
        self, session_id: str, run: str | None, file: dict[str, Any], peer: str
    ) -> None:
        name = file.get("path")
        if not isinstance(name, str) or not name:
            return
        path = _relative(session_id, run, name)
        fields = _file_fields(file, peer, session_id, run)
        try:
            async with self.store.transaction() as tx:
                await sessions.upsert_recording(tx, session_id, path, **fields)
        except errors.Conflict:
            # another hub inserted the same row at the same moment: write again as an update
            async with self.store.transaction() as tx:
                await sessions.upsert_recording(tx, session_id, path, **fields)

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
