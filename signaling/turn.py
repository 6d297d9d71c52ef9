"""TURN credentials for coturn's ``use-auth-secret`` mode, handed to each participant."""

from __future__ import annotations

import base64
import hashlib
import hmac


def turn_credentials(secret: str, user: str, ttl_s: int, now: float) -> tuple[str, str]:
    """Time-limited TURN credentials for coturn's ``use-auth-secret`` mode.

    Args:
        secret: coturn's ``static-auth-secret``.
        user: who the credentials are for (a participant or account id).
        ttl_s: validity in seconds.
        now: the current UNIX time.

    Returns:
        ``(username, password)`` with username ``"<expiry>:<user>"`` and password
        ``base64(HMAC-SHA1(secret, username))``.
    """
    username = f"{int(now) + ttl_s}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")
