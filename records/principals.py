"""Who is acting: the plain value the policy and every layer above pass around."""

from __future__ import annotations

import dataclasses

from records.enums import ParticipantRole, PrincipalKind, Role


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated actor: an official's account, a community terminal or an invite holder.

    Attributes:
        kind: account, terminal or invite.
        id: the account id, terminal id (as strings) or invite id.
        unit_id: the unit it belongs to (an invite may have none).
        name: a display name.
        roles: account roles (empty for terminals and invites).
        session_id: for invites, the one session they are bound to.
        session_role: for invites, the role they have in that session.
    """

    kind: PrincipalKind
    id: str
    unit_id: int | None
    name: str
    roles: frozenset[Role] = frozenset()
    session_id: str | None = None
    session_role: ParticipantRole | None = None

    @property
    def ref(self) -> str:
        """``kind:id``, as written in the audit log."""
        return f"{self.kind.value}:{self.id}"

    @property
    def account_id(self) -> int | None:
        """The account id for officials, else None."""
        return int(self.id) if self.kind is PrincipalKind.ACCOUNT else None

    def has(self, *roles: Role) -> bool:
        """Whether the principal holds any of ``roles``."""
        return any(r in self.roles for r in roles)
