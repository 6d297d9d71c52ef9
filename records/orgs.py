"""The four-level org tree: loading it from TOML, importing it, and answering scope questions."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import ConfigError, RecordsError
from records import models
from records.enums import UnitLevel

#: which levels a unit's parent may have
ALLOWED_PARENTS: Mapping[UnitLevel, frozenset[UnitLevel]] = {
    UnitLevel.DISTRICT: frozenset(),
    UnitLevel.DEPARTMENT: frozenset({UnitLevel.DISTRICT, UnitLevel.DEPARTMENT}),
    UnitLevel.SUBDISTRICT: frozenset({UnitLevel.DISTRICT}),
    UnitLevel.COMMUNITY: frozenset({UnitLevel.SUBDISTRICT}),
}


@dataclasses.dataclass(frozen=True, slots=True)
class UnitSpec:
    """One unit as written in an org file."""

    code: str
    name: str
    level: UnitLevel
    parent: str | None
    petition_bureau: bool = False
    reception: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Unit:
    """One unit as the layers above see it."""

    id: int
    code: str
    name: str
    level: UnitLevel
    parent_id: int | None
    is_petition_bureau: bool
    is_reception: bool
    active: bool


def parse_org_file(path: Path) -> list[UnitSpec]:
    """Read and validate an org file; the whole file is refused on the first problem.

    Raises:
        ConfigError: naming the file, the unit code and the problem (cycle, unknown parent,
            duplicate code, wrong level order, missing field).
    """
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"org file {str(path)!r} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"org file {str(path)!r} is not valid TOML: {exc}") from exc
    return validate_units(raw.get("unit", []), str(path))


def validate_units(entries: Any, source: str) -> list[UnitSpec]:
    """Validate the ``[[unit]]`` entries of an org file (see :func:`parse_org_file`)."""
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: no [[unit]] entries")
    specs: dict[str, UnitSpec] = {}
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: unit #{i} is not a table")
        code = entry.get("code")
        name = entry.get("name")
        level = entry.get("level")
        parent = entry.get("parent")
        if not isinstance(code, str) or not code.strip() or len(code) > 64:
            raise ConfigError(f"{source}: unit #{i} has no valid code (got {code!r})")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise ConfigError(f"{source}: unit {code!r} has no valid name (got {name!r})")
        try:
            level_e = UnitLevel(str(level))
        except ValueError as exc:
            raise ConfigError(
                f"{source}: unit {code!r} has unknown level {level!r}"
                f" (expected one of {', '.join(v.value for v in UnitLevel)})"
            ) from exc
        if parent is not None and not isinstance(parent, str):
            raise ConfigError(
                f"{source}: unit {code!r} has a parent that is not a code: {parent!r}"
            )
        if code in specs:
            raise ConfigError(f"{source}: duplicate unit code {code!r}")
        unknown = set(entry) - {"code", "name", "level", "parent", "petition_bureau", "reception"}
        if unknown:
            raise ConfigError(f"{source}: unit {code!r} has unknown keys {sorted(unknown)}")
        specs[code] = UnitSpec(
            code=code,
            name=name.strip(),
            level=level_e,
            parent=parent,
            petition_bureau=bool(entry.get("petition_bureau", False)),
            reception=bool(entry.get("reception", False)),
        )
    for spec in specs.values():
        if spec.parent is None:
            if spec.level is not UnitLevel.DISTRICT:
                raise ConfigError(f"{source}: unit {spec.code!r} ({spec.level}) needs a parent")
            continue
        if spec.parent not in specs:
            raise ConfigError(f"{source}: unit {spec.code!r} has unknown parent {spec.parent!r}")
        parent_level = specs[spec.parent].level
        if parent_level not in ALLOWED_PARENTS[spec.level]:
            raise ConfigError(
                f"{source}: unit {spec.code!r} ({spec.level}) cannot sit under"
                f" {spec.parent!r} ({parent_level}): wrong level order"
            )
    for spec in specs.values():  # cycles (only possible among departments)
        seen = {spec.code}
        cur = spec.parent
        while cur is not None:
            if cur in seen:
                raise ConfigError(f"{source}: cycle in parents through unit {spec.code!r}")
            seen.add(cur)
            cur = specs[cur].parent
    return _topological(specs)


def _topological(specs: Mapping[str, UnitSpec]) -> list[UnitSpec]:
    ordered: list[UnitSpec] = []
    placed: set[str] = set()

    def place(spec: UnitSpec) -> None:
        if spec.code in placed:
            return
        if spec.parent is not None:
            place(specs[spec.parent])
        placed.add(spec.code)
        ordered.append(spec)

    for spec in specs.values():
        place(spec)
    return ordered


@dataclasses.dataclass(frozen=True, slots=True)
class ImportResult:
    """What an org import did."""

    created: int
    updated: int
    unchanged: int
    deactivated: int
    deleted: int


async def import_units(db: AsyncSession, specs: Iterable[UnitSpec]) -> ImportResult:
    """Create or update units by code; units missing from the file are deactivated, not deleted.

    Idempotent: importing the same file twice changes nothing the second time. Runs in the
    caller's transaction; the caller commits.
    """
    specs = list(specs)
    try:
        rows = {u.code: u for u in (await db.scalars(select(models.OrgUnit))).all()}
        created = updated = unchanged = 0
        for spec in specs:
            parent_id = rows[spec.parent].id if spec.parent is not None else None
            row = rows.get(spec.code)
            wanted = {
                "name": spec.name,
                "level": spec.level,
                "parent_id": parent_id,
                "is_petition_bureau": spec.petition_bureau,
                "is_reception": spec.reception,
                "active": True,
            }
            if row is None:
                row = models.OrgUnit(code=spec.code, **wanted)
                db.add(row)
                await db.flush()
                rows[spec.code] = row
                created += 1
            elif any(getattr(row, k) != v for k, v in wanted.items()):
                for k, v in wanted.items():
                    setattr(row, k, v)
                updated += 1
            else:
                unchanged += 1
        in_file = {s.code for s in specs}
        deactivated = 0
        for code, row in rows.items():
            if code not in in_file and row.active:
                row.active = False  # records may refer to it: never delete
                deactivated += 1
        await db.flush()
    except SQLAlchemyError as exc:
        raise RecordsError(f"org import failed: {exc}") from exc
    return ImportResult(created, updated, unchanged, deactivated, 0)


class OrgTree:
    """An immutable snapshot of the tree for scope checks (rebuilt after an import)."""

    def __init__(self, units: Iterable[Unit]) -> None:
        self.units: dict[int, Unit] = {u.id: u for u in units}
        self.by_code: dict[str, Unit] = {u.code: u for u in self.units.values()}
        self._children: dict[int, list[int]] = {}
        for u in self.units.values():
            if u.parent_id is not None:
                self._children.setdefault(u.parent_id, []).append(u.id)
        self._subtree_cache: dict[int, frozenset[int]] = {}

    def get(self, unit_id: int) -> Unit | None:
        """The unit with ``unit_id`` or None."""
        return self.units.get(unit_id)

    def ancestors(self, unit_id: int) -> list[int]:
        """The unit itself, then its parent, up to the root."""
        out: list[int] = []
        cur: int | None = unit_id
        while cur is not None and cur in self.units and cur not in out:
            out.append(cur)
            cur = self.units[cur].parent_id
        return out

    def subtree(self, unit_id: int) -> frozenset[int]:
        """The unit and every unit below it."""
        cached = self._subtree_cache.get(unit_id)
        if cached is not None:
            return cached
        out: set[int] = set()
        stack = [unit_id]
        while stack:
            cur = stack.pop()
            if cur in out:
                continue
            out.add(cur)
            stack.extend(self._children.get(cur, ()))
        result = frozenset(out)
        self._subtree_cache[unit_id] = result
        return result

    def within(self, unit_id: int, scope_unit_id: int) -> bool:
        """Whether ``unit_id`` is ``scope_unit_id`` or below it."""
        return scope_unit_id in self.ancestors(unit_id)

    def sees_everything(self, unit_id: int) -> bool:
        """The district petition bureau (and its reception centre) sees every unit."""
        return any(self.units[a].is_petition_bureau for a in self.ancestors(unit_id))

    def reception_unit(self, unit_id: int) -> Unit | None:
        """The reception unit that answers visits from ``unit_id`` (nearest district's)."""
        for a in self.ancestors(unit_id):
            unit = self.units[a]
            if unit.level is UnitLevel.DISTRICT:
                for uid in self.subtree(a):
                    candidate = self.units[uid]
                    if candidate.is_reception and candidate.active:
                        return candidate
                return None
        return None


async def load_tree(db: AsyncSession) -> OrgTree:
    """Read every unit into an :class:`OrgTree`."""
    try:
        rows = (await db.scalars(select(models.OrgUnit))).all()
    except SQLAlchemyError as exc:
        raise RecordsError(f"reading org units failed: {exc}") from exc
    return OrgTree(
        Unit(
            id=r.id,
            code=r.code,
            name=r.name,
            level=r.level,
            parent_id=r.parent_id,
            is_petition_bureau=r.is_petition_bureau,
            is_reception=r.is_reception,
            active=r.active,
        )
        for r in rows
    )
