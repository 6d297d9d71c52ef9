"""Login sessions: only the SHA-256 of the cookie token is stored (throttle: config.ratelimit)."""

import dataclasses
import datetime as dt
import secrets

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from records import models
from records.accounts.officials import AccountInfo, get_account, sha256_hex
from records.base import utcnow


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
