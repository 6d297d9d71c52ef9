"""Officials' accounts and their passwords (argon2, hashed in a thread: it takes tens of ms)."""

import asyncio
import dataclasses
import hashlib
import re
from collections.abc import Collection, Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import Conflict, NotFound, ValidationError
from records import models
from records.enums import PrincipalKind, Role
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
