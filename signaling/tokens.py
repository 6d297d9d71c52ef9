"""Resume tokens: a signed list of a principal's memberships, valid for the resume window."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_resume(secret: str, principal_ref: str, conn_id: str) -> str:
    """A token naming the principal and the connection it resumes."""
    payload = _b64(json.dumps({"p": principal_ref, "c": conn_id, "t": int(time.time())}).encode())
    mac = _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:18])
    return f"{payload}.{mac}"


def verify_resume(secret: str, token: str, principal_ref: str) -> str | None:
    """The resumed connection id if the token is genuine and the principal's own.

    Whether the memberships are still resumable is decided by the hub: a participant is
    resumable while its row has no leave time (the resume window's timer sets it).
    """
    try:
        payload, mac = token.split(".", 1)
        good = _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:18])
        if not hmac.compare_digest(good, mac):
            return None
        data: Any = json.loads(_unb64(payload))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("p") != principal_ref:
        return None
    if not isinstance(data.get("t"), int):
        return None
    conn = data.get("c")
    return conn if isinstance(conn, str) else None
