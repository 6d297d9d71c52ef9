"""Login sessions (only the SHA-256 of the cookie token is stored) and the failed-login throttle."""

import dataclasses
import datetime as dt
import secrets
import time
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from records import models
from records.accounts.officials import AccountInfo, get_account, sha256_hex
from records.base import utcnow


def is_address_key(key: str) -> bool:
    """Whether a throttle key counts a client address (its kind, before ``:``, ends in addr)."""
    return key.partition(":")[0].endswith("addr")


class LoginThrottle:
    """Counts failed logins per key (username, address) in this process; refuses after too many.

    The hubs count on the bus, across the cluster (``config/ratelimit.py``); this in-memory count is
    what a hub falls back to while the bus is unreachable.
    """

    def __init__(
        self,
        max_failures: int,
        lockout_s: float,
        clock: Any = time.monotonic,
        *,
        max_failures_per_address: int | None = None,
    ) -> None:
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address or max_failures
        self.lockout_s = lockout_s
        self._clock = clock
        self._failures: dict[str, list[float]] = {}

    def limit(self, key: str) -> int:
        """The failures ``key`` may have within the window.

        An address key (``addr:…``, ``eval-addr:…``) is allowed more than a username or a code,
        so one person's typos do not lock out a whole office behind one address.
        """
        return self.max_failures_per_address if is_address_key(key) else self.max_failures

    def _recent(self, key: str) -> list[float]:
        now = self._clock()
        stamps = [t for t in self._failures.get(key, []) if now - t < self.lockout_s]
        if stamps:
            self._failures[key] = stamps
        else:
            self._failures.pop(key, None)
        return stamps

    def locked(self, *keys: str) -> bool:
        """Whether any key has reached the limit within the lockout window."""
        return any(len(self._recent(k)) >= self.limit(k) for k in keys)

    def fail(self, *keys: str) -> None:
        """Count one failure against each key."""
        now = self._clock()
        for k in keys:
            self._recent(k)
            self._failures.setdefault(k, []).append(now)
        if len(self._failures) > 100_000:  # bound memory under a spray attack
            for k in list(self._failures)[:50_000]:
                del self._failures[k]

    def reset(self, *keys: str) -> None:
        """Forget failures after a successful login."""
        for k in keys:
            self._failures.pop(k, None)


# ---- login sessions ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class LoginInfo:
    """A valid login: the account and its CSRF token."""

    account: AccountInfo
    csrf_token: str


async def open_login(
    db: AsyncSession, account: AccountInfo, ttl: dt.timedelta, remote: str
) -> tuple[str, str]:
    """Start a login session; return (cookie token, CSRF token). The caller commits."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    db.add(
        models.LoginSession(
            token_hash=sha256_hex(token),
            account_id=account.id,
            csrf_token=csrf,
            expires_at=utcnow() + ttl,
            remote=remote[:64],
        )
    )
    await db.flush()
    return token, csrf


async def resolve_login(db: AsyncSession, token: str) -> LoginInfo | None:
    """The login for a cookie token if valid, not expired, not revoked, account active."""
    if not token or len(token) > 200:
        return None
    row = await db.get(models.LoginSession, sha256_hex(token))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    account = await get_account(db, row.account_id)
    if not account.active:
        return None
    return LoginInfo(account, row.csrf_token)


async def close_login(db: AsyncSession, token: str) -> None:
    """Revoke a login session (logout)."""
    await db.execute(
        update(models.LoginSession)
        .where(models.LoginSession.token_hash == sha256_hex(token))
        .values(revoked_at=utcnow())
    )
