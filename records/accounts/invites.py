"""Invites: tokens signed with the service's secret key, bound to one revocable invite row."""

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac

from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import NotFound, ValidationError
from records import models
from records.base import utcnow
from records.enums import ParticipantRole, PrincipalKind
from records.principals import Principal

# ---- invites -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class InviteInfo:
    """An invitation into one session."""

    id: str
    session_id: str
    role: ParticipantRole
    display_name: str
    unit_id: int | None
    expires_at: dt.datetime
    revoked: bool

    def principal(self) -> Principal:
        """The principal acting with this invite."""
        return Principal(
            PrincipalKind.INVITE,
            self.id,
            self.unit_id,
            self.display_name,
            session_id=self.session_id,
            session_role=self.role,
        )


INVITE_PREFIX = "pgi_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_invite(secret_key: str, invite_id: str, expires_at: dt.datetime) -> str:
    """A token carrying the invite id and expiry, signed with the service key."""
    payload = f"{invite_id}.{int(expires_at.timestamp())}"
    mac = hmac.new(secret_key.encode(), payload.encode(), hashlib.sha256).digest()[:18]
    return f"{INVITE_PREFIX}{payload}.{_b64(mac)}"


def verify_invite_token(secret_key: str, token: str, now: dt.datetime) -> str | None:
    """The invite id if the signature holds and the token has not expired."""
    if not token.startswith(INVITE_PREFIX) or len(token) > 200:
        return None
    parts = token[len(INVITE_PREFIX) :].split(".")
    if len(parts) != 3:
        return None
    invite_id, expiry, mac = parts
    payload = f"{invite_id}.{expiry}"
    good = _b64(hmac.new(secret_key.encode(), payload.encode(), hashlib.sha256).digest()[:18])
    if not hmac.compare_digest(good, mac):
        return None
    try:
        if int(expiry) <= now.timestamp():
            return None
    except ValueError:
        return None
    return invite_id


async def create_invite(
    db: AsyncSession,
    secret_key: str,
    session_id: str,
    role: ParticipantRole,
    display_name: str,
    unit_id: int | None,
    created_by: int | None,
    ttl: dt.timedelta,
) -> tuple[InviteInfo, str]:
    """Create an invite bound to one session; return it and its token."""
    if not display_name or len(display_name) > 200:
        raise ValidationError(f"invitee name {display_name!r}: 1-200 characters expected")
    if ttl <= dt.timedelta(0) or ttl > dt.timedelta(days=30):
        raise ValidationError(f"invite lifetime {ttl}: between 1 second and 30 days expected")
    session = await db.get(models.Session, session_id)
    if session is None:
        raise NotFound(f"session {session_id!r} not found")
    expires = utcnow() + ttl
    row = models.Invite(
        session_id=session_id,
        role=role,
        display_name=display_name,
        unit_id=unit_id,
        created_by=created_by,
        expires_at=expires,
    )
    db.add(row)
    await db.flush()
    info = InviteInfo(row.id, session_id, role, display_name, unit_id, expires, False)
    return info, sign_invite(secret_key, row.id, expires)


async def resolve_invite(db: AsyncSession, secret_key: str, token: str) -> InviteInfo | None:
    """The invite for a token: signature, expiry and revocation all checked."""
    now = utcnow()
    invite_id = verify_invite_token(secret_key, token, now)
    if invite_id is None:
        return None
    return await get_valid_invite(db, invite_id)


async def get_valid_invite(db: AsyncSession, invite_id: str) -> InviteInfo | None:
    """The invite if it exists, is not revoked and has not expired (checked mid-session too)."""
    row = await db.get(models.Invite, invite_id)
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    return InviteInfo(
        row.id, row.session_id, row.role, row.display_name, row.unit_id, row.expires_at, False
    )


async def revoke_invite(db: AsyncSession, invite_id: str) -> str:
    """Revoke an invite; returns its session id."""
    row = await db.get(models.Invite, invite_id)
    if row is None:
        raise NotFound(f"invite {invite_id!r} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    await db.flush()
    return row.session_id
