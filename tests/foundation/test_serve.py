"""`petition-gateway serve --demo` as a newcomer runs it: a real process on a real port."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import T


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


async def _serve(tmp_path: Path, host: str) -> tuple[asyncio.subprocess.Process, int, list[str]]:
    port = _free_port(host)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_DATA_DIR"] = str(tmp_path / "data")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        "--demo",
        "--host",
        host,
        "--port",
        str(port),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    async with asyncio.timeout(60 * T):
        while True:
            raw = await proc.stdout.readline()
            assert raw, "serve exited:\n" + "\n".join(lines)
            lines.append(raw.decode().rstrip())
            if "petition-gateway listening on" in lines[-1]:
                break
    return proc, port, lines


async def _stop(proc: asyncio.subprocess.Process) -> None:
    proc.terminate()
    async with asyncio.timeout(20 * T):
        assert await proc.wait() == 0  # graceful shutdown on SIGTERM


@pytest.mark.slow
async def test_demo_serve_health_and_login_over_http(tmp_path: Path) -> None:
    proc, port, lines = await _serve(tmp_path, "127.0.0.1")
    try:
        password = next(
            ln.split()[3] for ln in lines if ln.strip().startswith("official  reception")
        )
        assert any("/kiosk#token=pgt_" in ln for ln in lines)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
            body = {"username": "reception", "password": password}
            async with http.post(f"http://127.0.0.1:{port}/api/login", json=body) as resp:
                assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{port}/api/me") as resp:
                assert (await resp.json())["roles"] == ["reception"]
    finally:
        await _stop(proc)
    assert (tmp_path / "data" / "gateway.db").exists()
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o077 == 0


@pytest.mark.slow
async def test_demo_on_a_non_loopback_address_serves_https_with_its_printed_fingerprint(
    tmp_path: Path,
) -> None:
    host = "127.0.0.2"  # not "localhost": browsers would refuse the camera over plain HTTP
    proc, port, lines = await _serve(tmp_path, host)
    try:
        printed = next(
            re.search(r"fingerprint ([0-9A-F:]+)", ln) for ln in lines if "fingerprint" in ln
        )
        assert printed is not None
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        assert ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest()) == printed.group(1)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"https://{host}:{port}/healthz", ssl=ctx) as resp,
        ):
            assert resp.status == 200
            assert resp.headers["Strict-Transport-Security"]
    finally:
        await _stop(proc)
