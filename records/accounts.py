"""Accounts, terminals, invites, login sessions and the audit log.

Secrets (device credentials, login cookies) are random tokens; only their SHA-256 is stored.
Invite tokens are signed with the service's secret key and bound to one invite row, which can
be revoked. Password hashing (argon2) runs in a thread: it takes tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, String, and_, cast, literal, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import Conflict, NotFound, RecordsError, ValidationError
from records import models
from records.base import utcnow
from records.enums import ParticipantRole, PrincipalKind, Role
from records.item_models import BacklogCase, ItemCoHandler, ItemRow
from records.principals import Principal

_hasher = PasswordHasher()
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")
MAX_PASSWORD = 256


def sha256_hex(text: str) -> str:
    """SHA-256 of a token, as stored."""
    return hashlib.sha256(text.encode()).hexdigest()


def validate_username(username: object) -> str:
    """Return the username or raise ValidationError quoting it."""
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise ValidationError(
            f"username {username!r}: 2-64 letters, digits, '_', '.' or '-' expected"
        )
    return username


def validate_password(password: object) -> str:
    """Passwords: 10-256 characters."""
    if not isinstance(password, str) or not 10 <= len(password) <= MAX_PASSWORD:
        raise ValidationError("password: 10 to 256 characters expected")
    return password


async def hash_password(password: str) -> str:
    """Argon2 hash, computed in a thread."""
    return await asyncio.to_thread(_hasher.hash, password)


async def check_password(stored_hash: str, password: str) -> bool:
    """Verify in a thread; False on any mismatch or bad hash."""

    def verify() -> bool:
        try:
            return bool(_hasher.verify(stored_hash, password))
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


# a hash to verify against when the username does not exist, so timing does not tell
_DUMMY_HASH = _hasher.hash("not-a-real-password-0000")


@dataclasses.dataclass(frozen=True, slots=True)
class AccountInfo:
    """An official's account as the layers above see it."""

    id: int
    username: str
    display_name: str
    unit_id: int
    roles: frozenset[Role]
    active: bool

    def principal(self) -> Principal:
        """The principal acting as this account."""
        return Principal(
            PrincipalKind.ACCOUNT, str(self.id), self.unit_id, self.display_name, self.roles
        )


async def create_account(
    db: AsyncSession,
    username: str,
    display_name: str,
    password: str,
    unit_id: int,
    roles: Iterable[Role],
    *,
    password_hash: str | None = None,
) -> AccountInfo:
    """Create an official's account; the caller commits.

    ``password_hash`` (an argon2 hash made earlier) skips hashing ``password`` again, for
    bulk imports and test fixtures.
    """
    validate_username(username)
    if password_hash is None:
        validate_password(password)
    roles = frozenset(roles)
    if not roles:
        raise ValidationError("an account needs at least one role")
    if not display_name or len(display_name) > 200:
        raise ValidationError(f"display name {display_name!r}: 1-200 characters expected")
    unit = await db.get(models.OrgUnit, unit_id)
    if unit is None or not unit.active:
        raise NotFound(f"unit {unit_id!r} does not exist or is inactive")
    if await db.scalar(select(models.Account.id).where(models.Account.username == username)):
        raise Conflict(f"username {username!r} is taken")
    row = models.Account(
        username=username,
        display_name=display_name,
        password_hash=password_hash or await hash_password(password),
        unit_id=unit_id,
    )
    db.add(row)
    try:
        await db.flush()
        for role in roles:
            db.add(models.AccountRole(account_id=row.id, role=role))
        await db.flush()
    except IntegrityError as exc:
        raise Conflict(f"username {username!r} is taken") from exc
    return AccountInfo(row.id, username, display_name, unit_id, roles, True)


async def get_account(db: AsyncSession, account_id: int) -> AccountInfo:
    """The account with its roles, or NotFound."""
    row = await db.get(models.Account, account_id)
    if row is None:
        raise NotFound(f"account {account_id!r} not found")
    roles = (
        await db.scalars(
            select(models.AccountRole.role).where(models.AccountRole.account_id == account_id)
        )
    ).all()
    return AccountInfo(
        row.id, row.username, row.display_name, row.unit_id, frozenset(roles), row.active
    )


async def list_leaders(db: AsyncSession, unit_ids: Collection[int]) -> list[AccountInfo]:
    """The active leaders (领导) of ``unit_ids``, by unit then name (approvers, the roster)."""
    rows = (
        await db.scalars(
            select(models.Account)
            .join(models.AccountRole, models.AccountRole.account_id == models.Account.id)
            .where(
                models.AccountRole.role == Role.LEADER,
                models.Account.active.is_(True),
                models.Account.unit_id.in_(list(unit_ids)),
            )
            .order_by(models.Account.unit_id, models.Account.display_name)
        )
    ).all()
    return [await get_account(db, row.id) for row in rows]


async def display_names(db: AsyncSession, account_ids: Collection[int]) -> dict[int, str]:
    """Account id → display name, for naming who acted in a history."""
    if not account_ids:
        return {}
    rows = await db.execute(
        select(models.Account.id, models.Account.display_name).where(
            models.Account.id.in_(list(account_ids))
        )
    )
    return {row.id: row.display_name for row in rows}


async def find_account(db: AsyncSession, username: str) -> AccountInfo | None:
    """The account with ``username``, or None."""
    account_id = await db.scalar(
        select(models.Account.id).where(models.Account.username == username)
    )
    return None if account_id is None else await get_account(db, account_id)


async def set_password(db: AsyncSession, account_id: int, password: str) -> None:
    """Replace an account's password."""
    validate_password(password)
    row = await db.get(models.Account, account_id)
    if row is None:
        raise NotFound(f"account {account_id!r} not found")
    row.password_hash = await hash_password(password)
    await db.flush()


async def authenticate(db: AsyncSession, username: str, password: str) -> AccountInfo | None:
    """The account if the password matches and the account is active, else None."""
    row = await db.scalar(select(models.Account).where(models.Account.username == username))
    if row is None:
        await check_password(_DUMMY_HASH, password)
        return None
    if not await check_password(row.password_hash, password) or not row.active:
        return None
    return await get_account(db, row.id)


def is_address_key(key: str) -> bool:
    """Whether a throttle key counts a client address (its kind, before ``:``, ends in addr)."""
    return key.partition(":")[0].endswith("addr")


class LoginThrottle:
    """Counts failed logins per key (username, address) in this process; refuses after too many.

    The hubs count on the bus, across the cluster (``web/throttle.py``); this in-memory count is
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


# ---- terminals -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class TerminalInfo:
    """A community terminal."""

    id: int
    name: str
    unit_id: int
    revoked: bool

    def principal(self) -> Principal:
        """The principal acting as this terminal."""
        return Principal(PrincipalKind.TERMINAL, str(self.id), self.unit_id, self.name)


TERMINAL_PREFIX = "pgt_"


async def create_terminal(db: AsyncSession, name: str, unit_id: int) -> tuple[TerminalInfo, str]:
    """Create a terminal; return it and its device credential (shown once, stored hashed)."""
    if not name or len(name) > 200:
        raise ValidationError(f"terminal name {name!r}: 1-200 characters expected")
    unit = await db.get(models.OrgUnit, unit_id)
    if unit is None or not unit.active:
        raise NotFound(f"unit {unit_id!r} does not exist or is inactive")
    credential = TERMINAL_PREFIX + secrets.token_urlsafe(32)
    row = models.Terminal(name=name, unit_id=unit_id, credential_hash=sha256_hex(credential))
    db.add(row)
    await db.flush()
    return TerminalInfo(row.id, name, unit_id, False), credential


async def resolve_terminal(db: AsyncSession, credential: str) -> TerminalInfo | None:
    """The terminal for a device credential, unless unknown or revoked."""
    if not credential.startswith(TERMINAL_PREFIX) or len(credential) > 200:
        return None
    row = await db.scalar(
        select(models.Terminal).where(models.Terminal.credential_hash == sha256_hex(credential))
    )
    if row is None or row.revoked_at is not None:
        return None
    return TerminalInfo(row.id, row.name, row.unit_id, False)


async def get_terminal(db: AsyncSession, terminal_id: int) -> TerminalInfo:
    """A terminal by id, or NotFound."""
    row = await db.get(models.Terminal, terminal_id)
    if row is None:
        raise NotFound(f"terminal {terminal_id!r} not found")
    return TerminalInfo(row.id, row.name, row.unit_id, row.revoked_at is not None)


async def revoke_terminal(db: AsyncSession, terminal_id: int) -> None:
    """Revoke a terminal's credential at once."""
    row = await db.get(models.Terminal, terminal_id)
    if row is None:
        raise NotFound(f"terminal {terminal_id!r} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    await db.flush()


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


# ---- audit log -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit entry."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    remote: str
    outcome: str
    detail: dict[str, Any]


async def audit(
    db: AsyncSession,
    actor: str,
    action: str,
    object_type: str = "",
    object_id: str = "",
    *,
    remote: str = "",
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the audit log (the caller commits)."""
    try:
        db.add(
            models.AuditEntry(
                actor=actor[:80],
                action=action[:64],
                object_type=object_type[:32],
                object_id=str(object_id)[:64],
                remote=remote[:64],
                outcome=outcome,
                detail=detail or {},
            )
        )
        await db.flush()
    except SQLAlchemyError as exc:
        raise RecordsError(f"audit write failed: {exc}") from exc


async def audit_entries(
    db: AsyncSession,
    *,
    action: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    limit: int = 100,
    unit_ids: Collection[int] | None = None,
) -> Sequence[AuditRecord]:
    """The newest audit entries matching the filters.

    ``unit_ids`` scopes the answer to a part of the org tree (None: every entry): an entry is
    in it when its object belongs to one of those units (a session of that unit or received
    there, an item registered, handled or co-handled there, the unit itself, an account,
    terminal or announcement of it, a recording, invite or backlog case of such a session or
    item) or when its actor does (an account or terminal of the unit, an invite to one of its
    sessions).
    """
    q = select(models.AuditEntry).order_by(models.AuditEntry.id.desc()).limit(min(limit, 1000))
    if action is not None:
        q = q.where(models.AuditEntry.action == action)
    if object_id is not None:
        q = q.where(models.AuditEntry.object_id == object_id)
    if actor is not None:
        q = q.where(models.AuditEntry.actor == actor)
    if unit_ids is not None:
        q = q.where(_audit_scope(sorted(set(unit_ids))))
    rows = (await db.scalars(q)).all()
    return [
        AuditRecord(
            r.id, r.at, r.actor, r.action, r.object_type, r.object_id, r.remote, r.outcome, r.detail
        )
        for r in rows
    ]


def _audit_scope(units: list[int]) -> ColumnElement[bool]:
    """The audit entries whose object or actor lies in ``units`` (see :func:`audit_entries`)."""
    entry = models.AuditEntry
    ids_as_text = [str(u) for u in units]
    sessions_in = select(models.Session.id).where(
        or_(models.Session.unit_id.in_(units), models.Session.reception_unit_id.in_(units))
    )
    items_in = select(ItemRow.id).where(
        or_(
            ItemRow.registering_unit_id.in_(units),
            ItemRow.handling_unit_id.in_(units),
            ItemRow.id.in_(select(ItemCoHandler.item_id).where(ItemCoHandler.unit_id.in_(units))),
        )
    )
    invites_in = select(models.Invite.id).where(models.Invite.session_id.in_(sessions_in))

    def object_in(kind: str, ids: Any) -> ColumnElement[bool]:
        return and_(entry.object_type == kind, entry.object_id.in_(ids))

    def as_text(column: Any) -> Any:
        return cast(column, String)

    return or_(
        object_in("session", sessions_in),
        object_in("item", items_in),
        object_in("unit", ids_as_text),
        object_in(
            "account", select(as_text(models.Account.id)).where(models.Account.unit_id.in_(units))
        ),
        # failed logins name the account by its username
        object_in(
            "account", select(models.Account.username).where(models.Account.unit_id.in_(units))
        ),
        object_in(
            "terminal",
            select(as_text(models.Terminal.id)).where(models.Terminal.unit_id.in_(units)),
        ),
        object_in("invite", invites_in),
        object_in(
            "recording",
            select(as_text(models.Recording.id)).where(
                models.Recording.session_id.in_(sessions_in)
            ),
        ),
        object_in(
            "announcement",
            select(as_text(models.Announcement.id)).where(models.Announcement.unit_id.in_(units)),
        ),
        object_in(
            "backlog", select(as_text(BacklogCase.id)).where(BacklogCase.item_id.in_(items_in))
        ),
        entry.actor.in_(
            select(literal("account:") + as_text(models.Account.id)).where(
                models.Account.unit_id.in_(units)
            )
        ),
        entry.actor.in_(
            select(literal("terminal:") + as_text(models.Terminal.id)).where(
                models.Terminal.unit_id.in_(units)
            )
        ),
        entry.actor.in_(
            select(literal("invite:") + models.Invite.id).where(
                models.Invite.session_id.in_(sessions_in)
            )
        ),
    )
