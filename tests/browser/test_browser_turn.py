"""A video visit whose browsers may only use TURN relays, through a real coturn.

Terminals behind firewalls that block direct UDP reach the media worker through coturn. Here
coturn (Debian's ``coturn``) runs on loopback with ``use-auth-secret``; the hub hands each
participant time-limited credentials (``media.turn_secret``/``turn_urls``); both pages are
made to use relay candidates only (``iceTransportPolicy: "relay"``, injected by the test) and
the visit must still show video both ways. Expired credentials are refused by coturn.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aioice.stun
import aioice.turn
import pytest

from signaling.turn import turn_credentials
from tests.browser.browser_kit import ask_for_a_visit, frames_rising, wait_for
from tests.browser.conftest import Gateway, Open, served_gateway

pytestmark = pytest.mark.browser

COMMUNITY = "QX-DFJD-HPSQ"
TURNSERVER = "/usr/bin/turnserver"

RELAY_ONLY = """
(() => {
  const Native = window.RTCPeerConnection;
  function RelayOnly(config, ...rest) {
    return new Native({...(config || {}), iceTransportPolicy: "relay"}, ...rest);
  }
  RelayOnly.prototype = Native.prototype;
  Object.setPrototypeOf(RelayOnly, Native);
  window.RTCPeerConnection = RelayOnly;
})();
"""

SELECTED_CANDIDATES = """
async () => {
  const out = [];
  for (const link of window.__pg.links) {
    const report = await link.pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    report.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) {
        const pair = byId.get(s.selectedCandidatePairId);
        const local = byId.get(pair.localCandidateId);
        out.push(local.candidateType);
      }
    });
  }
  return out;
}
"""


class Coturn:
    """``turnserver`` on 127.0.0.1 with a shared secret, loopback peers allowed (tests only)."""

    def __init__(self, port: int, secret: str, log: Path) -> None:
        self.port = port
        self.secret = secret
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            TURNSERVER,
            "-n",  # no configuration file: everything is on this line
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={self.port}",
            "--min-port=49900",
            "--max-port=49999",
            "--use-auth-secret",
            f"--static-auth-secret={self.secret}",
            "--realm=petition.test",
            "--fingerprint",
            "--allow-loopback-peers",  # the media worker listens on loopback here
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--no-tcp-relay",
            "--simple-log",
            f"--log-file={self.log}",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def _allocate(port: int, username: str, password: str) -> str:
    """Allocate a relay with these credentials; returns the relayed address (or raises)."""
    transport, _ = await aioice.turn.create_turn_endpoint(
        asyncio.DatagramProtocol, ("127.0.0.1", port), username, password
    )
    try:
        host, relay_port = transport.get_extra_info("sockname")
        return f"{host}:{relay_port}"
    finally:
        transport.close()


@pytest.fixture
def coturn(tmp_path: Path, unused_udp_port: int) -> Iterator[Coturn]:
    if shutil.which(TURNSERVER) is None:
        import os

        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but coturn is missing: apt-get install -y coturn")
        pytest.skip("coturn not installed")
    server = Coturn(unused_udp_port, secrets.token_hex(16), tmp_path / "turn.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def gateway(tmp_path: Path, coturn: Coturn) -> AsyncIterator[Gateway]:
    """The real app, configured with coturn's secret and address (replaces conftest's)."""
    async with served_gateway(
        tmp_path,
        media={
            "in_process_worker": True,
            "ice_loopback_only": True,
            "turn_secret": coturn.secret,
            "turn_urls": [f"turn:127.0.0.1:{coturn.port}?transport=udp"],
            "turn_ttl_s": 600,
        },
    ) as gw:
        yield gw


async def _coturn_ready(coturn: Coturn) -> None:
    """Wait until coturn allocates a relay (its start can take seconds on a busy machine)."""
    username, password = turn_credentials(coturn.secret, "probe", 600, time.time())
    deadline = time.monotonic() + 30
    while True:
        try:
            await asyncio.wait_for(_allocate(coturn.port, username, password), 3)
            return
        except (OSError, TimeoutError, aioice.stun.TransactionFailed) as exc:
            exited = coturn.proc is not None and coturn.proc.poll() is not None
            if exited or time.monotonic() > deadline:
                log = coturn.log.read_text(errors="replace")[-2000:] if coturn.log.exists() else ""
                state = "exited" if exited else "running"
                raise AssertionError(f"coturn ({state}) never allocated: {exc!r}\n{log}") from exc
            await asyncio.sleep(0.5)


async def test_expired_turn_credentials_are_refused(coturn: Coturn) -> None:
    await _coturn_ready(coturn)
    # the hub's credentials work...
    username, password = turn_credentials(coturn.secret, "officer", 600, time.time())
    relayed = await _allocate(coturn.port, username, password)
    assert relayed.startswith("127.0.0.1:")
    # ...an hour-old one that expired does not, nor one signed with another secret
    username, password = turn_credentials(coturn.secret, "officer", 600, time.time() - 3600)
    with pytest.raises(aioice.stun.TransactionFailed, match="401"):
        await _allocate(coturn.port, username, password)
    username, password = turn_credentials("not-the-secret", "officer", 600, time.time())
    with pytest.raises(aioice.stun.TransactionFailed, match="401"):
        await _allocate(coturn.port, username, password)


async def test_a_visit_works_through_turn_relays_only(
    gateway: Gateway, open_page: Open, coturn: Coturn, browser: Any
) -> None:
    await _coturn_ready(coturn)
    kiosk = await open_page(f"/kiosk#token={gateway.seed.terminals[COMMUNITY]}")
    console = await open_page("/console", login="reception")
    for page in (kiosk, console):
        await page.context.add_init_script(RELAY_ONLY)
        await page.reload()

    await ask_for_a_visit(kiosk, "房屋与拆迁")
    await console.get_by_role("button", name=re.compile("接听")).first.click()
    await kiosk.locator("#v-call").wait_for(state="visible")
    await frames_rising(kiosk, within=30)
    await frames_rising(console, within=30)

    async def relayed(page: Any) -> bool:
        kinds = await page.evaluate(SELECTED_CANDIDATES)
        return bool(kinds) and all(k == "relay" for k in kinds)

    for page in (kiosk, console):
        await wait_for("a relay candidate pair", lambda page=page: relayed(page), within=10)
