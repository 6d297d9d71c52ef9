"""A recorded visit in /library: labelled by who, which part and when, and seekable in Chromium.

The files come from the real recorder (``RoomRecorder``, real VP8 + Opus packets, a rotation
so the visit has two parts) and reach the database through the hub's ``RecordingsKeeper``,
the way a media worker's recording events do.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from gateway.recordings import RecordingsKeeper
from recorder.participant import RecorderSettings
from recorder.room import RoomRecorder
from records import sessions
from records.enums import AdmissionState, ParticipantRole, PrincipalKind, SessionKind
from records.principals import Principal
from signaling.bus import MemoryBus
from signaling.bus_messages import RecordingEvent
from tests.browser.browser_kit import T, screenshot, wait_for
from tests.browser.conftest import Gateway, Open
from tests.recorder.synthetic_media import encode_source, packets_for
from web import keys

pytestmark = pytest.mark.browser

UNIT = "QX-XFJ-JDZX"  # the reception centre: the "reception" account's unit
COMMUNITY = "QX-DFJD-HPSQ"

#: seek the library's player to ``target`` seconds, play, and report where it is after a while
SEEK_AND_PLAY = """async (target) => {
  const v = document.querySelector("#player");
  v.muted = true;
  v.pause();
  const seeked = new Promise((ok) => v.addEventListener("seeked", ok, {once: true}));
  v.currentTime = target;
  await Promise.race([seeked, new Promise((ok) => setTimeout(ok, 5000))]);
  const landed = v.currentTime;
  // a stalled pipeline never settles play(): give up on it after a while
  await Promise.race([v.play().catch(() => {}), new Promise((ok) => setTimeout(ok, 3000))]);
  const t0 = performance.now();
  while (performance.now() - t0 < 4000 && !v.ended && v.currentTime < landed + 0.8) {
    await new Promise((ok) => setTimeout(ok, 50));
  }
  return {landed, now: v.currentTime, ended: v.ended, paused: v.paused,
          error: v.error && {code: v.error.code, message: v.error.message},
          ready: v.readyState};
}"""


async def _record_visit(gateway: Gateway) -> tuple[str, str]:
    """A visit session with a resident whose ~20 s are recorded in two parts (a rotation)."""
    unit = gateway.seed.units[UNIT]
    terminal = gateway.seed.terminal_ids[COMMUNITY]
    async with gateway.store.transaction() as tx:
        session = await sessions.create_session(
            tx, kind=SessionKind.VISIT, unit_id=unit, title="违建影响采光", recorded=True
        )
        resident = await sessions.add_participant(
            tx,
            session.id,
            Principal(PrincipalKind.TERMINAL, str(terminal), unit, "和平社区终端"),
            ParticipantRole.RESIDENT,
            AdmissionState.ADMITTED,
            joined=True,
        )
    events: list[RecordingEvent] = []
    recorder = RoomRecorder(
        gateway.app[keys.SETTINGS].recordings_dir,
        session.id,
        "vp8",
        {"kind": "visit"},
        events.append,
        settings=RecorderSettings(segment_seconds=14.0),
    )
    recorder.start()
    for kind, packet, arrival in packets_for(encode_source(duration=20.0), t0=time.time()):
        recorder.on_packet(resident.id, kind, packet, arrival)
    await recorder.close()
    keeper = RecordingsKeeper(gateway.app[keys.SETTINGS], gateway.store, MemoryBus(), sweep=False)
    for event in events:
        if event.type != "recording.closed":
            await keeper.apply(event)
    # the closing event also composes a training's playback; for a visit it only stores rows
    await keeper.apply(next(e for e in events if e.type == "recording.closed"))
    await keeper.close()
    async with gateway.store.transaction() as tx:
        # a composed playback row, to see how /library tells it from the participants' files
        await sessions.upsert_recording(
            tx,
            session.id,
            f"{session.id}/playback.mp4",
            participant_id=None,
            codec="h264+aac",
            state="playback",
        )
    return session.id, resident.id


async def _duration(page: Any) -> float:
    value: float = await page.evaluate("document.querySelector('#player').duration")
    return value


async def test_a_recorded_visit_is_labelled_and_seeks_in_the_library(
    gateway: Gateway, open_page: Open
) -> None:
    session_id, _ = await _record_visit(gateway)
    async with gateway.store.transaction() as tx:
        recs = await sessions.recordings_of(tx, session_id)
    first, second = (r for r in recs if r.segment is not None)
    assert (first.segment, first.reason, second.segment, second.reason) == (
        0,
        "start",
        1,
        "rotation",
    )

    page = await open_page("/library", login="reception")
    rows = page.locator("#results li")
    await rows.first.wait_for()
    labels = [str(x) for x in await page.locator("#results .rec-label").all_text_contents()]
    # who, which part and when; the composed playback first and named as such
    assert labels[0] == "合成回放（全体参会人员画面合成）"
    assert labels[1].startswith("和平社区终端 · 信访群众 · 第1段（开始录制） · 开始于 ")
    assert labels[2].startswith("和平社区终端 · 信访群众 · 第2段（定时分段） · 开始于 ")
    text = await page.locator("#results").inner_text()
    for key in ("rotation", "start", "resident", "playback", "rec_"):
        assert key not in text  # no internal keys on a Chinese page

    # play the first part: a finite duration (the file has one) and seeks that play on
    await page.get_by_role("button", name=re.compile(rf"^播放 #{first.id} ")).click()

    async def has_duration() -> bool:
        value = await _duration(page)
        return value is not None and 0 < value < 1e6

    await wait_for("the player's duration", has_duration, within=15)
    duration = await _duration(page)
    assert first.ended_at is not None
    assert first.started_at is not None
    expected = (first.ended_at - first.started_at).total_seconds()
    assert duration == pytest.approx(expected, abs=0.3)
    for target in (duration / 2, duration - 1.5):
        result = await page.evaluate(SEEK_AND_PLAY, target)
        assert result["error"] is None, result
        assert abs(result["landed"] - target) < 0.5, result
        assert result["now"] > result["landed"] + 0.5 or result["ended"], result
    await screenshot(page, "library-seeked")

    # the English page says the same in English
    await page.locator("#lang").click()
    await page.get_by_text("Composed playback (all participants in one picture)").wait_for(
        timeout=10_000 * T
    )
    labels = [str(x) for x in await page.locator("#results .rec-label").all_text_contents()]
    assert labels[1].startswith("和平社区终端 · Resident · part 1 (start of recording) · starts ")
    assert labels[2].startswith("和平社区终端 · Resident · part 2 (scheduled split) · starts ")
