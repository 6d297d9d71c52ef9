"""Helpers the browser tests share: media figures from the pages, polling, screenshots."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: scalable time unit for waits (slow CI machines may raise it)
T = float(os.environ.get("GATEWAY_TEST_TIMEOUT_UNIT", "1.0"))


async def stats(page: Any) -> dict[str, Any]:
    """The page's media figures (see web/static/js/media.js)."""
    result: dict[str, Any] = await page.evaluate("window.__pg.stats()")
    return result


DIAGNOSE = """
async () => {
  const out = {pcs: [], videos: []};
  for (const link of window.__pg.links) {
    const pc = link.pc;
    const rtp = [];
    const codecs = {};
    (await pc.getStats()).forEach((s) => {
      if (s.type === "codec") codecs[s.id] = `${s.mimeType}/${s.payloadType}`;
      if (s.type === "inbound-rtp") rtp.push(s);
    });
    out.pcs.push({
      state: pc.connectionState, signaling: pc.signalingState,
      tracks: [...link.tracks.values()],
      transceivers: pc.getTransceivers().map((t) => [t.mid, t.direction, t.currentDirection,
                                                     t.receiver.track && t.receiver.track.id]),
      inbound: rtp.map((s) => ({mid: s.mid, kind: s.kind, ssrc: s.ssrc, codec: codecs[s.codecId],
        packets: s.packetsReceived, lost: s.packetsLost, discarded: s.packetsDiscarded,
        bytes: s.bytesReceived, framesReceived: s.framesReceived, framesDecoded: s.framesDecoded,
        keyFrames: s.keyFramesDecoded, framesDropped: s.framesDropped, pli: s.pliCount,
        nack: s.nackCount, samples: s.totalSamplesReceived, concealed: s.concealedSamples,
        energy: s.totalAudioEnergy, emitted: s.jitterBufferEmittedCount,
        track: s.trackIdentifier})),
    });
  }
  for (const v of document.querySelectorAll("video")) {
    const so = v.srcObject;
    out.videos.push({paused: v.paused, ready: v.readyState, muted: v.muted,
      tracks: so ? so.getTracks().map((t) => [t.kind, t.id, t.readyState, t.muted]) : null});
  }
  return out;
}
"""


async def diagnose(page: Any) -> Any:
    """What the page's connections receive and what its video elements play (for failures)."""
    return await page.evaluate(DIAGNOSE)


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """Poll ``check`` until true or fail naming ``what``."""
    deadline = time.monotonic() + within * T
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def frames_rising(page: Any, publisher: str | None = None, within: float = 20.0) -> int:
    """Wait until video frames from ``publisher`` (or anyone) are decoded and still rising."""

    async def frames() -> int:
        s = await stats(page)
        if publisher is None:
            return int(s["framesDecoded"])
        return int(s["byPublisher"].get(publisher, {}).get("frames", 0))

    first: list[int] = []

    async def rising() -> bool:
        n = await frames()
        if not first:
            if n > 0:
                first.append(n)
            return False
        return n > first[0] + 5

    try:
        await wait_for(f"video frames from {publisher or 'anyone'}", rising, within)
    except AssertionError as exc:
        # say what did arrive: packets without decoded frames point at the media path
        raise AssertionError(
            f"{exc}; page media figures: {await stats(page)}; details: {await diagnose(page)}"
        ) from None
    return await frames()


async def screenshot(page: Any, name: str) -> None:
    """Save a screenshot under test-artifacts/ (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def audio_heard(page: Any, publisher: str, within: float = 20.0) -> None:
    """Wait until audio from ``publisher`` is received and decoded to non-silence."""

    async def heard() -> bool:
        s = (await stats(page))["byPublisher"].get(publisher, {})
        return bool(s.get("audioPackets", 0) > 20 and s.get("audioEnergy", 0) > 0)

    try:
        await wait_for(f"audio from {publisher}", heard, within)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; page media figures: {await stats(page)}; details: {await diagnose(page)}"
        ) from None


async def ask_for_a_visit(kiosk: Any, matter: str) -> None:
    """On a kiosk: pick the matter, call the reception, wait for the queue view."""
    await kiosk.get_by_role("button", name=matter).click()
    await kiosk.get_by_role("button", name="呼叫接访人员").click()
    await kiosk.locator("#v-queue").wait_for(state="visible")
