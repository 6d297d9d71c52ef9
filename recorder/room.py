"""RoomRecorder: the recording of one room, fed by the media layer on the event loop.

Threads: ``on_packet``/``on_track_end`` only read a few attributes and enqueue (never
block); one writer thread per room does all muxing and file I/O; one hashing thread per
room hashes finished files so a 30-minute segment's SHA-256 never stalls muxing. Callbacks
(``on_event``, ``request_keyframe``) are always called on the event loop thread that called
:meth:`RoomRecorder.start`.

Every recorder is one **run** of its session (``recorder.layout``): its files live in
``directory / session_id / run``, a directory created exclusively, so a second recording of
the same session (recording turned off and on, the room moved to another worker) can never
overwrite the first. There: one file per participant and segment, ``manifest.json`` (state
``open`` while recording, rewritten atomically on every file change, chained once when the
run is finalised) and ``recording.open``, a marker locked with ``flock`` for as long as the
recording runs, so recovery can tell a crashed recording from a live one on another worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, Protocol

from config.errors import RecorderError
from recorder.chain import append_chain
from recorder.layout import close_run, create_run, mark_open, new_run_id
from recorder.manifest import (
    MANIFEST_NAME,
    OPEN_MARKER,
    SCHEMA_VERSION,
    STATE_CLOSED,
    STATE_OPEN,
    RoomManifest,
    iso_utc,
    manifest_bytes,
    sha256_file,
    write_atomic,
)
from recorder.participant import (
    ParticipantRecorder,
    QueuedPacket,
    RecorderSettings,
    safe_name,
)
from recorder.segment import CONTAINERS, SegmentInfo
from signaling import bus_messages as B

logger = logging.getLogger(__name__)

__all__ = ["RecorderSettings", "RoomManifest", "RoomRecorder", "RoomSink"]

#: receives each recording event (the bus models of :mod:`signaling.bus_messages`)
EventCallback = Callable[[B.RecordingEvent], None]
KeyframeCallback = Callable[[str], None]

_TICK_SECONDS = 0.25
# The writer drains the queue in batches: waking a thread per packet costs more than muxing.
_DRAIN_SECONDS = 0.1
_DROP_EVENT_INTERVAL = 5.0
_KINDS = ("video", "audio")


class _Stop:
    pass


_STOP = _Stop()


@dataclass(frozen=True, slots=True)
class _TrackEnd:
    peer: str
    kind: str


@dataclass(frozen=True, slots=True)
class _ParticipantUpdate:
    peer: str
    info: dict[str, Any]


_Item = QueuedPacket | _TrackEnd | _ParticipantUpdate | _Stop


class RoomSink(Protocol):
    """What the media layer calls for a recorded room."""

    def on_packet(self, peer: str, kind: str, packet: Any, arrival_wallclock: float) -> None:
        """Enqueue one encoded frame (non-blocking)."""

    def on_track_end(self, peer: str, kind: str) -> None:
        """A peer's track of this kind ended."""

    async def close(self) -> RoomManifest:
        """Finalise files and the manifest; idempotent."""
        ...


class RoomRecorder:
    """Records every participant of one room, without transcoding.

    Args:
        directory: the recordings root; this run's files go to
            ``directory/session_id/run`` and the chain to ``directory/chain.jsonl``.
        session_id: the session id (also the directory name; no path separators).
        codec: the room's video codec, ``"vp8"`` (WebM files) or ``"h264"`` (Matroska).
        meta: session metadata: ``kind``, ``units`` and ``participants``
            (peer id → ``{"name", "role", "unit"}``); other keys are kept under ``meta``.
        on_event: called on the event loop with each event (``RecordingEvent``, published on
            the bus as it is; see docs/recording.md).
        request_keyframe: called on the event loop with a peer id when the recorder needs
            a keyframe from that peer (start, rotation, after drops).
        settings: tunables; defaults suit production.
        run: this run's id (default: a new one, ``recorder.layout.new_run_id``).
    """

    def __init__(
        self,
        directory: Path,
        session_id: str,
        codec: str,
        meta: dict[str, Any],
        on_event: EventCallback | None = None,
        *,
        request_keyframe: KeyframeCallback | None = None,
        settings: RecorderSettings | None = None,
        run: str | None = None,
    ) -> None:
        codec = codec.lower()
        if codec not in CONTAINERS:
            raise RecorderError(f"unsupported recording codec {codec!r} (vp8 or h264)")
        if not session_id or safe_name(session_id) != session_id:
            raise RecorderError(f"session id {session_id!r} is not usable as a directory name")
        self.root = Path(directory)
        self.session_id = session_id
        self.run = run or new_run_id()
        if safe_name(self.run) != self.run:
            raise RecorderError(f"run id {self.run!r} is not usable as a directory name")
        # ParticipantHost.session_dir: where this run's files go
        self.session_dir = self.root / session_id / self.run
        self.codec = codec
        self.settings = settings or RecorderSettings()
        self._on_event = on_event
        self._request_keyframe = request_keyframe
        self._meta = {k: v for k, v in meta.items() if k not in ("participants",)}
        self._people: dict[str, dict[str, Any]] = {
            str(peer): dict(info) for peer, info in dict(meta.get("participants", {})).items()
        }
        # deque append/popleft are atomic: the loop never takes a lock or wakes the writer.
        self._queue: collections.deque[_Item] = collections.deque()
        self._wake = threading.Event()
        self._seq: dict[tuple[str, str], int] = {}
        self._dropped: dict[str, dict[str, int]] = {}
        self._last_drop_event = 0.0
        self._participants: dict[str, ParticipantRecorder] = {}
        self._stems: set[str] = set()
        self._started_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._hasher = ThreadPoolExecutor(1, thread_name_prefix=f"rec-hash-{session_id}")
        self._hash_jobs: list[Future[None]] = []
        self._manifest_lock = threading.Lock()
        self._marker: IO[bytes] | None = None
        self._accepting = False
        self._broken: str | None = None  # why this run could not be created
        self._closing: asyncio.Future[RoomManifest] | None = None

    # -- event-loop side -------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (call on the event loop; does no file I/O itself)."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._started_at = time.time()
        self._accepting = True
        self._thread = threading.Thread(
            target=self._run, name=f"rec-writer-{self.session_id}", daemon=True
        )
        self._thread.start()

    def update_participant(self, peer: str, info: dict[str, Any]) -> None:
        """Merge name/role/unit (or more) for ``peer`` into the manifest."""
        if self._accepting:
            self._queue.append(_ParticipantUpdate(peer, dict(info)))
        else:
            self._people.setdefault(peer, {}).update(info)

    def on_packet(self, peer: str, kind: str, packet: Any, arrival_wallclock: float) -> None:
        """Enqueue one encoded frame for the writer thread; drops (and counts) when full.

        Args:
            peer: the publishing participant.
            kind: ``"video"`` or ``"audio"``.
            packet: an ``av.Packet`` with ``pts`` (RTP timestamp), ``time_base``
                (1/90000 or 1/48000) and, for video, ``is_keyframe``.
            arrival_wallclock: ``time.time()`` when the frame's earliest packet arrived.
        """
        if not self._accepting or kind not in _KINDS:
            return
        key = (peer, kind)
        seq = self._seq.get(key, -1) + 1
        self._seq[key] = seq
        if len(self._queue) >= self.settings.queue_packets:
            per_peer = self._dropped.setdefault(peer, {"video": 0, "audio": 0})
            per_peer[kind] += 1
            now = time.monotonic()
            if now - self._last_drop_event >= _DROP_EVENT_INTERVAL:
                self._last_drop_event = now
                logger.warning(
                    "session %s: recorder queue full, dropping (%s)", self.session_id, per_peer
                )
                self._deliver(
                    B.RecordingDropping(
                        session_id=self.session_id,
                        dropped={p: dict(c) for p, c in self._dropped.items()},
                    )
                )
            return
        time_base = packet.time_base
        self._queue.append(
            QueuedPacket(
                peer=peer,
                kind=kind,
                packet=packet,
                pts=int(packet.pts),
                time_base=time_base if time_base is not None else Fraction(1, 90000),
                keyframe=bool(packet.is_keyframe) if kind == "video" else True,
                arrival=arrival_wallclock,
                seq=seq,
            )
        )

    def on_track_end(self, peer: str, kind: str) -> None:
        """The peer's track of ``kind`` ended: close its file when no track is left."""
        if self._accepting:
            self._queue.append(_TrackEnd(peer, kind))

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called (the run is finalised or being finalised)."""
        return self._closing is not None

    async def close(self) -> RoomManifest:
        """Stop, finalise every file, hash, write the manifest and chain it. Idempotent.

        Returns:
            The finalised manifest (same object on every call).

        Raises:
            RecorderError: the run's directory could not be created (nothing was written).
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        return await asyncio.shield(self._closing)

    async def _close(self) -> RoomManifest:
        self._accepting = False
        thread = self._thread
        if thread is not None:
            self._queue.append(_STOP)
            self._wake.set()
            await asyncio.to_thread(thread.join)
        try:
            result = await asyncio.to_thread(self._finalise)
        finally:
            self._hasher.shutdown(wait=False)
        self._deliver(
            B.RecordingClosed(
                session_id=self.session_id,
                run=self.run,
                chain_index=result.chain_index,
                manifest=str(result.path),
                manifest_sha256=result.sha256,
                chain_hash=result.chain_hash,
                previous_chain_hash=result.previous_chain_hash,
                files=result.data["files"],
            )
        )
        return result

    def _deliver(self, event: B.RecordingEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:  # a faulty listener must not stop the recording
            logger.exception("session %s: on_event failed for %s", self.session_id, event.type)

    def _from_thread(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed at interpreter exit
            loop.call_soon_threadsafe(callback, *args)

    # -- ParticipantHost (writer and hash threads) ------------------------------------------

    def request_keyframe(self, peer: str) -> None:
        """Ask the media layer for a keyframe from ``peer`` (any thread)."""
        if self._request_keyframe is not None:
            self._from_thread(self._request_keyframe, peer)

    def segment_opened(self, info: SegmentInfo) -> None:
        """Writer thread: a file was opened."""
        self._write_manifest(STATE_OPEN)
        event = B.RecordingFileStarted(
            session_id=self.session_id, run=self.run, peer=info.peer, file=info.to_json()
        )
        self._from_thread(self._deliver, event)

    def segment_closed(self, info: SegmentInfo, path: Path) -> None:
        """Writer thread: a file was finalised; hash it in the hashing thread."""
        self._hash_jobs.append(self._hasher.submit(self._hash_segment, info, path))

    def participant_error(self, peer: str, error: Exception) -> None:
        """Writer thread: a file failed (the participant continues in a new file)."""
        event = B.RecordingError(
            session_id=self.session_id, run=self.run, peer=peer, error=str(error)
        )
        self._from_thread(self._deliver, event)

    def _hash_segment(self, info: SegmentInfo, path: Path) -> None:
        try:
            info.bytes = path.stat().st_size
            info.sha256 = sha256_file(path)
        except OSError as exc:
            logger.error("session %s: cannot hash %s: %s", self.session_id, path, exc)
            info.state = "failed"
        self._write_manifest(STATE_OPEN)
        event = B.RecordingFileClosed(
            session_id=self.session_id, run=self.run, peer=info.peer, file=info.to_json()
        )
        self._from_thread(self._deliver, event)

    # -- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._prepare()
        except (OSError, RecorderError) as exc:
            # Nothing of this run can be written; above all nothing into a directory that is
            # not ours. Packets are dropped until close, which chains nothing.
            logger.exception("session %s: cannot create %s", self.session_id, self.session_dir)
            self._broken = str(exc)
            self._accepting = False
            self._from_thread(
                self._deliver,
                B.RecordingError(
                    session_id=self.session_id,
                    run=self.run,
                    peer=None,
                    error=f"cannot create {self.session_dir}: {exc}",
                ),
            )
            self._queue.clear()
            return
        next_tick = time.monotonic() + _TICK_SECONDS
        stopping = False
        while not stopping:
            self._wake.wait(_DRAIN_SECONDS)
            while self._queue:
                item = self._queue.popleft()
                if isinstance(item, _Stop):
                    stopping = True
                    break
                try:
                    self._dispatch(item)
                except Exception:  # top of the writer: log, keep recording the others
                    logger.exception("session %s: writer error", self.session_id)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + _TICK_SECONDS
                now = time.time()
                for participant in self._participants.values():
                    try:
                        participant.tick(now)
                    except Exception:
                        logger.exception("session %s: writer error", self.session_id)
        for participant in self._participants.values():
            try:
                participant.finish()
            except Exception:
                logger.exception("session %s: cannot finish %s", self.session_id, participant.peer)

    def _prepare(self) -> None:
        create_run(
            self.root,
            self.session_id,
            self.run,
            {"started_at": iso_utc(self._started_at), "host": socket.gethostname()},
        )
        marker = (self.session_dir / OPEN_MARKER).open("xb")
        fcntl.flock(marker.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        marker.write(
            json.dumps(
                {
                    "session": self.session_id,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started_at": iso_utc(self._started_at),
                }
            ).encode()
        )
        marker.flush()
        self._marker = marker
        mark_open(self.root, self.session_id, self.run)
        self._write_manifest(STATE_OPEN)

    def _dispatch(self, item: QueuedPacket | _TrackEnd | _ParticipantUpdate) -> None:
        if isinstance(item, QueuedPacket):
            self._participant(item.peer).handle(item)
        elif isinstance(item, _TrackEnd):
            if item.peer in self._participants:
                self._participants[item.peer].track_ended(item.kind)
        else:
            self._people.setdefault(item.peer, {}).update(item.info)
            self._write_manifest(STATE_OPEN)

    def _participant(self, peer: str) -> ParticipantRecorder:
        participant = self._participants.get(peer)
        if participant is None:
            stem = safe_name(peer)
            while stem in self._stems:
                stem += "_"
            self._stems.add(stem)
            participant = ParticipantRecorder(peer, self, stem)
            self._participants[peer] = participant
            self._people.setdefault(peer, {})
        return participant

    # -- manifest ----------------------------------------------------------------------------

    def _manifest(self, state: str, ended_at: float | None) -> dict[str, Any]:
        # Called from the writer and the hashing thread: copy containers before iterating.
        participants = list(self._participants.values())
        files = [info.to_json() for p in participants for info in list(p.segments)]
        files.sort(key=lambda f: (f["started_at"] or "", f["peer"], f["segment"]))
        dropped = {peer: dict(counts) for peer, counts in list(self._dropped.items())}
        return {
            "schema": SCHEMA_VERSION,
            "session": self.session_id,
            "run": self.run,
            "state": state,
            "kind": self._meta.get("kind"),
            "units": self._meta.get("units", []),
            "codec": self.codec,
            "started_at": iso_utc(self._started_at),
            "ended_at": iso_utc(ended_at),
            "participants": {peer: dict(info) for peer, info in list(self._people.items())},
            "files": files,
            "dropped": dropped,
            "skipped_before_keyframe": {p.peer: p.skipped_before_keyframe for p in participants},
            "meta": {k: v for k, v in self._meta.items() if k not in ("kind", "units")},
        }

    def _write_manifest(self, state: str, ended_at: float | None = None) -> bytes:
        with self._manifest_lock:
            payload = manifest_bytes(self._manifest(state, ended_at))
            if self.session_dir.exists():
                write_atomic(self.session_dir / MANIFEST_NAME, payload, fsync=state != STATE_OPEN)
            return payload

    def _finalise(self) -> RoomManifest:
        wait(self._hash_jobs)
        if self._started_at is None:
            self._started_at = time.time()
        if self._broken is not None:
            raise RecorderError(f"recording run {self.run} of {self.session_id}: {self._broken}")
        if self._marker is None:
            # the writer never ran: the run still gets its directory, so the chain never
            # names a manifest that is not there
            self._prepare()
        payload = self._write_manifest(STATE_CLOSED, time.time())
        entry = append_chain(self.root, self.session_id, payload, self.run)
        marker = self._marker
        self._marker = None
        with contextlib.suppress(FileNotFoundError):
            (self.session_dir / OPEN_MARKER).unlink()
        if marker is not None:
            marker.close()  # releases the flock
        close_run(self.root, self.session_id, self.run)
        return RoomManifest(
            session=self.session_id,
            path=self.session_dir / MANIFEST_NAME,
            sha256=entry.manifest_sha256,
            chain_hash=entry.chain,
            previous_chain_hash=entry.previous,
            state=STATE_CLOSED,
            data=json.loads(payload),
            run=self.run,
            chain_index=entry.index,
        )
