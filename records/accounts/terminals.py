"""Community terminals and their device credentials (only the SHA-256 is stored)."""

import dataclasses
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import NotFound, ValidationError
from records import models
from records.accounts.officials import sha256_hex
from records.base import utcnow
from records.enums import PrincipalKind
from records.principals import Principal

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
