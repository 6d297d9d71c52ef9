"""Building a media worker with its recorder, in the hub process or as ``petition-gateway worker``.

The worker reaches the hub only through the bus: recording events (files started, closed and
hashed; manifests and chain hashes; :data:`signaling.bus_messages.RecordingEvent`) go out on
the ``recording.events`` channel, and the hub writes them to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any, cast

from aiortc import RTCIceServer

from config.errors import GatewayError
from config.settings import Settings
from gateway.media.forward import RoomSink
from gateway.media.worker import MediaWorker
from recorder.room import RecorderSettings, RoomRecorder
from signaling import bus_messages as B
from signaling.bus import Bus, create_bus

logger = logging.getLogger(__name__)

#: how often a worker looks for recording runs left open by a worker that died
RECOVER_INTERVAL_S = 10.0


class RecordingBridge:
    """Creates a RoomRecorder per recorded room and forwards its events to the bus.

    Recorder callbacks run on the event loop and must not block: events go to a bounded
    queue drained by one task this bridge owns.
    """

    def __init__(self, settings: Settings, bus: Bus) -> None:
        self.settings = settings
        self.bus = bus
        self._queue: asyncio.Queue[B.RecordingEvent | None] = asyncio.Queue(10_000)
        self._task: asyncio.Task[None] | None = None
        self._recover_task: asyncio.Task[None] | None = None
        self._recorders: dict[int, RoomRecorder] = {}
        self.worker: MediaWorker | None = None

    def start(self) -> None:
        """Start the publishing task."""
        if self._task is None:
            self._task = asyncio.create_task(self._publish(), name="recording-bridge")
        if self._recover_task is None:
            self._recover_task = asyncio.create_task(self._recover_loop(), name="recording-recover")

    def sink_factory(self, room_id: str, codec: str, meta: dict[str, Any]) -> RoomSink:
        """Called by the worker for every room recorded (``record: true`` or turned on)."""
        recorder = RoomRecorder(
            self.settings.recordings_dir,
            room_id,
            codec,
            {
                "session": room_id,
                "kind": meta.get("kind", ""),
                "units": [meta["unit_id"]] if meta.get("unit_id") is not None else [],
            },
            self._on_event,
            request_keyframe=lambda peer: self._keyframe(room_id, peer),
            settings=RecorderSettings(segment_seconds=self.settings.segment_minutes * 60),
        )
        recorder.start()
        # forget finished ones: the registry only tells recovery which runs are ours
        self._recorders = {k: r for k, r in self._recorders.items() if not r.closed}
        self._recorders[id(recorder)] = recorder
        # RoomRecorder.close() returns its manifest; the media layer ignores the value
        return cast(RoomSink, recorder)

    def _keyframe(self, room_id: str, peer: str) -> None:
        room = self.worker.rooms.get(room_id) if self.worker is not None else None
        request = getattr(room, "request_keyframe", None)
        if callable(request):
            request(peer)

    def _on_event(self, event: B.RecordingEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            logger.error("recording events backlog full; dropped %s", event.type)

    async def _publish(self) -> None:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            try:
                await self.bus.publish(B.RECORDING_EVENTS, event)
            except Exception:
                logger.exception("could not publish recording event %s", event.type)

    async def recover(self, *, scan_all: bool = True) -> None:
        """Close, hash and mark recording runs a crash left open (nothing is deleted).

        With ``scan_all`` (at start) every run is looked at; otherwise only the runs listed
        as open, which is cheap: a live worker then closes the runs of a worker that died.
        """
        from recorder.recovery import recover  # noqa: PLC0415

        mine = [
            (recorder.session_id, recorder.run)
            for recorder in self._recorders.values()
            if not recorder.closed
        ]
        found = await asyncio.to_thread(
            recover, self.settings.recordings_dir, scan_all=scan_all, skip=mine
        )
        for manifest in found:
            logger.warning(
                "recovered recording run %s/%s (%s)", manifest.session, manifest.run, manifest.state
            )
            self._on_event(
                B.RecordingClosed(
                    session_id=manifest.session,
                    run=manifest.run,
                    chain_index=manifest.chain_index,
                    manifest=str(manifest.path),
                    manifest_sha256=manifest.sha256,
                    chain_hash=manifest.chain_hash,
                    previous_chain_hash=manifest.previous_chain_hash,
                    files=manifest.data.get("files", []),
                    recovered=True,
                )
            )

    async def _recover_loop(self) -> None:
        while True:
            await asyncio.sleep(RECOVER_INTERVAL_S)
            try:
                await self.recover(scan_all=False)
            except (GatewayError, OSError) as exc:
                logger.error("recovering open recording runs failed: %s", exc)

    async def close(self) -> None:
        """Flush the queued events and stop; idempotent."""
        if self._recover_task is not None:
            self._recover_task.cancel()
            await asyncio.gather(self._recover_task, return_exceptions=True)
            self._recover_task = None
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None


class Worker:
    """A media worker with its recording bridge: start and close them together."""

    def __init__(self, media: MediaWorker, bridge: RecordingBridge) -> None:
        self.media = media
        self.bridge = bridge
        self.id = media.id
        self.rooms = media.rooms

    async def start(self) -> None:
        """Recover crashed recordings, start recording events, then serve rooms."""
        self.bridge.start()
        await self.bridge.recover()
        await self.media.start()

    async def close(self) -> None:
        """Close rooms (which finalises recordings), then flush their events."""
        await self.media.close()
        await self.bridge.close()


def build_worker(settings: Settings, bus: Bus, worker_id: str) -> Worker:
    """A media worker configured from ``settings``."""
    ice = [
        RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
        for s in settings.ice_servers
    ]
    bridge = RecordingBridge(settings, bus)
    media = MediaWorker(
        bus,
        worker_id,
        ice_servers=ice,
        ice_loopback_only=settings.ice_loopback_only,
        sink_factory=bridge.sink_factory,
    )
    bridge.worker = media
    return Worker(media, bridge)


async def run_worker(settings: Settings, worker_id: str) -> None:
    """``petition-gateway worker``: join the bus and serve rooms until SIGTERM/SIGINT."""
    bus = create_bus(settings.redis_url, settings.redis_prefix)
    await bus.ping()
    worker = build_worker(settings, bus, worker_id)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await worker.start()
    logger.info("media worker %s serving", worker_id)
    try:
        await stop.wait()
    finally:
        await worker.close()
        await bus.close()
