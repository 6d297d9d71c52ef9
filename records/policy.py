"""The one access policy: may this principal do this action on this object?

Every handler asks :func:`decide` (or :func:`require`). Inputs are plain values: the principal,
an action, an object description and the org tree. The rules (DOMAIN.md):

- scope: a principal sees objects of its own unit and the units below; the district petition
  bureau (and units below it, e.g. the reception centre) sees every unit;
- confidential accusation items (Art. 30) are visible only to their handlers, whatever the scope;
- a recused account (Art. 28) is refused on that item;
- terminals act only on their own sessions; invites only on their one session;
- roles gate actions (reception answers the queue, trainers run training, admins manage
  accounts, auditors read the audit log...);
- a visit asked for the leader on duty is taken by the leader it is routed to alone; a leader
  takes another visit only from its own unit's subtree (:func:`_answer_visit`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence

from config.errors import AccessDenied
from records.enums import (
    AdmissionState,
    ParticipantRole,
    PrincipalKind,
    Role,
    SessionKind,
    UnitLevel,
)
from records.orgs import OrgTree
from records.principals import Principal


class Action(enum.StrEnum):
    """Everything a principal can ask to do."""

    # sessions
    VIEW_SESSION = "view_session"
    JOIN_SESSION = "join_session"
    CREATE_SESSION = "create_session"
    REQUEST_VISIT = "request_visit"
    ANSWER_QUEUE = "answer_queue"
    MODERATE_SESSION = "moderate_session"  # admit, refuse, mute, remove, promote, end
    PUBLISH_MEDIA = "publish_media"
    INVITE = "invite"
    RECORDING_CONTROL = "recording_control"
    VIEW_RECORDING = "view_recording"
    # petition items
    VIEW_ITEM = "view_item"
    EDIT_ITEM = "edit_item"
    REGISTER_ITEM = "register_item"
    # unit-level
    VIEW_STATS = "view_stats"
    PUBLISH_ANNOUNCEMENT = "publish_announcement"
    MANAGE_ACCOUNTS = "manage_accounts"
    MANAGE_TERMINALS = "manage_terminals"
    VIEW_AUDIT = "view_audit"
    MANAGE_DUTY = "manage_duty"


@dataclasses.dataclass(frozen=True, slots=True)
class UnitTarget:
    """An action on a unit as a whole (stats, accounts, announcements)."""

    unit_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class SessionTarget:
    """What the policy needs to know of a session."""

    id: str
    kind: SessionKind
    unit_id: int
    reception_unit_id: int | None = None
    terminal_id: int | None = None
    convener_account_id: int | None = None
    routed_to_leader_id: int | None = None
    participant_refs: frozenset[str] = frozenset()  # principal refs with a participant row


@dataclasses.dataclass(frozen=True, slots=True)
class ItemTarget:
    """What the policy needs to know of a petition item."""

    id: str
    registering_unit_id: int
    handling_unit_id: int | None = None
    co_handling_unit_ids: frozenset[int] = frozenset()
    confidential: bool = False
    handler_account_ids: frozenset[int] = frozenset()
    recused_account_ids: frozenset[int] = frozenset()


Target = UnitTarget | SessionTarget | ItemTarget


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The answer, with the reason (written to the audit log on refusal)."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True, "allowed")

#: roles that may act on sessions and items of their scope at all
OFFICIAL_ROLES = frozenset({Role.RECEPTION, Role.LEADER, Role.MEDIATOR, Role.TRAINER, Role.AGENT})

#: which roles may create which session kinds
CREATE_ROLES: dict[SessionKind, frozenset[Role]] = {
    SessionKind.CALL: OFFICIAL_ROLES,
    SessionKind.CONFERENCE: frozenset({Role.RECEPTION, Role.LEADER, Role.MEDIATOR}),
    SessionKind.MEDIATION: frozenset({Role.MEDIATOR, Role.LEADER, Role.RECEPTION}),
    SessionKind.TRAINING: frozenset({Role.TRAINER, Role.LEADER}),
    SessionKind.FIELD: frozenset({Role.RECEPTION, Role.LEADER}),
    SessionKind.VISIT: frozenset({Role.AGENT, Role.RECEPTION}),
}

UNIT_ACTION_ROLES: dict[Action, frozenset[Role]] = {
    Action.VIEW_STATS: frozenset({Role.LEADER, Role.RECEPTION, Role.AUDITOR, Role.ADMIN}),
    Action.PUBLISH_ANNOUNCEMENT: frozenset({Role.LEADER, Role.ADMIN}),
    Action.MANAGE_ACCOUNTS: frozenset({Role.ADMIN}),
    Action.MANAGE_TERMINALS: frozenset({Role.ADMIN}),
    Action.VIEW_AUDIT: frozenset({Role.AUDITOR, Role.ADMIN}),
    Action.MANAGE_DUTY: frozenset({Role.ADMIN, Role.LEADER}),
    Action.REGISTER_ITEM: frozenset({Role.RECEPTION, Role.AGENT, Role.LEADER}),
}


def _deny(reason: str) -> Decision:
    return Decision(False, reason)


def in_scope(principal: Principal, unit_id: int | None, tree: OrgTree) -> bool:
    """Whether ``unit_id`` lies in the principal's scope (own unit and below, or everything)."""
    if principal.unit_id is None or unit_id is None:
        return False
    if tree.sees_everything(principal.unit_id):
        return True
    return tree.within(unit_id, principal.unit_id)


def decide(principal: Principal, action: Action, target: Target, tree: OrgTree) -> Decision:
    """Answer whether ``principal`` may do ``action`` on ``target``."""
    if isinstance(target, SessionTarget):
        return _session(principal, action, target, tree)
    if isinstance(target, ItemTarget):
        return _item(principal, action, target, tree)
    return _unit(principal, action, target, tree)


def require(principal: Principal, action: Action, target: Target, tree: OrgTree) -> None:
    """Like :func:`decide` but raise :class:`AccessDenied` with the reason on refusal."""
    decision = decide(principal, action, target, tree)
    if not decision.allowed:
        raise AccessDenied(f"{principal.ref} may not {action.value}: {decision.reason}")


def _unit(principal: Principal, action: Action, target: UnitTarget, tree: OrgTree) -> Decision:
    if principal.kind is not PrincipalKind.ACCOUNT:
        return _deny(f"{principal.kind.value}s cannot {action.value}")
    roles = UNIT_ACTION_ROLES.get(action)
    if action is Action.CREATE_SESSION:
        roles = OFFICIAL_ROLES
    if roles is None:
        return _deny(f"{action.value} is not a unit action")
    if not principal.has(*roles):
        return _deny(f"needs one of the roles {sorted(r.value for r in roles)}")
    if not in_scope(principal, target.unit_id, tree):
        return _deny(f"unit {target.unit_id} is outside the principal's scope")
    return ALLOW


def may_create_session(
    principal: Principal, kind: SessionKind, unit_id: int, tree: OrgTree
) -> Decision:
    """Whether ``principal`` may convene a session of ``kind`` for ``unit_id``."""
    if principal.kind is not PrincipalKind.ACCOUNT:
        return _deny(f"{principal.kind.value}s cannot convene sessions")
    roles = CREATE_ROLES[kind]
    if not principal.has(*roles):
        return _deny(f"convening a {kind.value} needs one of {sorted(r.value for r in roles)}")
    if not in_scope(principal, unit_id, tree):
        return _deny(f"unit {unit_id} is outside the principal's scope")
    return ALLOW


def _session(principal: Principal, action: Action, s: SessionTarget, tree: OrgTree) -> Decision:
    if principal.kind is PrincipalKind.TERMINAL:
        if s.terminal_id is None or str(s.terminal_id) != principal.id:
            # a terminal may join a training or announcement-like broadcast of its scope
            if (
                s.kind is SessionKind.TRAINING
                and action in (Action.JOIN_SESSION, Action.VIEW_SESSION)
                and in_scope_of_session_unit(principal, s, tree)
            ):
                return ALLOW
            return _deny(f"session {s.id} is not this terminal's")
        if action in (Action.VIEW_SESSION, Action.JOIN_SESSION, Action.PUBLISH_MEDIA):
            return ALLOW
        return _deny(f"terminals cannot {action.value}")
    if principal.kind is PrincipalKind.INVITE:
        if principal.session_id != s.id:
            return _deny(f"the invite is for another session than {s.id}")
        if action in (Action.VIEW_SESSION, Action.JOIN_SESSION):
            return ALLOW
        if action is Action.PUBLISH_MEDIA:
            return ALLOW if s.kind is not SessionKind.TRAINING else _deny("viewers do not publish")
        return _deny(f"invited participants cannot {action.value}")
    # officials
    scope_ok = (
        in_scope(principal, s.unit_id, tree)
        or in_scope(principal, s.reception_unit_id, tree)
        or principal.ref in s.participant_refs
        or (s.routed_to_leader_id is not None and principal.account_id == s.routed_to_leader_id)
    )
    if action is Action.VIEW_RECORDING:
        if not (scope_ok and principal.has(*OFFICIAL_ROLES, Role.AUDITOR)):
            return _deny(f"session {s.id} is outside the principal's scope")
        return ALLOW
    if not scope_ok:
        if (
            s.kind is SessionKind.TRAINING
            and action in (Action.JOIN_SESSION, Action.VIEW_SESSION)
            and in_scope_of_session_unit(principal, s, tree)
        ):
            return ALLOW
        return _deny(f"session {s.id} of unit {s.unit_id} is outside the principal's scope")
    if action is Action.VIEW_SESSION:
        return (
            ALLOW if principal.has(*OFFICIAL_ROLES, Role.AUDITOR, Role.ADMIN) else _deny("no role")
        )
    if not principal.has(*OFFICIAL_ROLES):
        return _deny("needs an official role")
    if action is Action.ANSWER_QUEUE:
        return _answer_visit(principal, s, tree)
    if action is Action.MODERATE_SESSION:
        if principal.account_id is not None and principal.account_id == s.convener_account_id:
            return ALLOW
        if principal.has(Role.LEADER, Role.RECEPTION, Role.MEDIATOR, Role.TRAINER):
            return ALLOW
        return _deny("moderating needs the convener or a leader, reception, mediator or trainer")
    return ALLOW


def _answer_visit(principal: Principal, s: SessionTarget, tree: OrgTree) -> Decision:
    """Who takes a visit from the queue (DOMAIN.md, leader duty reception).

    A visit asked for the leader on duty is routed to the leader on the day's roster and is
    taken by that leader alone. Any other visit is taken by reception officers in scope, or by
    a leader whose own subtree holds the visit's unit (the bureau's leaders: every unit),
    never by a leader below the unit the visit concerns.
    """
    if s.kind is not SessionKind.VISIT:
        return _deny("only visits are answered from the queue")
    if s.routed_to_leader_id is not None:
        if principal.has(Role.LEADER) and principal.account_id == s.routed_to_leader_id:
            return ALLOW
        return _deny(
            f"visit {s.id} asked for the leader on duty: only account "
            f"{s.routed_to_leader_id}, the leader it is routed to, takes it"
        )
    if principal.has(Role.RECEPTION):
        return ALLOW
    if principal.has(Role.LEADER):
        if in_scope(principal, s.unit_id, tree):
            return ALLOW
        return _deny(f"visit {s.id} from unit {s.unit_id} is outside the leader's own subtree")
    return _deny("answering visits needs the reception or leader role")


def in_scope_of_session_unit(principal: Principal, s: SessionTarget, tree: OrgTree) -> bool:
    """Training is broadcast down the tree.

    A sub-district's or community's training reaches the units below it; a district
    department's (the petition bureau's, the housing bureau's...) reaches the whole district.
    """
    if principal.unit_id is None:
        return False
    broadcast = s.unit_id
    unit = tree.get(s.unit_id)
    if unit is not None and unit.level is UnitLevel.DEPARTMENT:
        districts = [
            a for a in tree.ancestors(s.unit_id) if tree.units[a].level is UnitLevel.DISTRICT
        ]
        if districts:
            broadcast = districts[0]
    return tree.within(principal.unit_id, broadcast)


def _item(principal: Principal, action: Action, item: ItemTarget, tree: OrgTree) -> Decision:
    if principal.kind is not PrincipalKind.ACCOUNT:
        return _deny(f"{principal.kind.value}s cannot read petition items")
    account_id = principal.account_id
    if account_id in item.recused_account_ids:
        return _deny(f"account {account_id} is recused from item {item.id} (Art. 28)")
    if item.confidential:
        if account_id not in item.handler_account_ids:
            return _deny(f"item {item.id} is a confidential accusation (Art. 30)")
        return ALLOW
    units = {item.registering_unit_id, *item.co_handling_unit_ids}
    if item.handling_unit_id is not None:
        units.add(item.handling_unit_id)
    if not any(in_scope(principal, u, tree) for u in units):
        return _deny(f"item {item.id} is outside the principal's scope")
    if action is Action.VIEW_ITEM:
        if principal.has(*OFFICIAL_ROLES, Role.AUDITOR):
            return ALLOW
        return _deny("reading items needs an official or auditor role")
    if principal.has(*OFFICIAL_ROLES):
        return ALLOW
    return _deny("changing items needs an official role")


# ---- inside a session: the role a joiner gets, who moderates -------------------------------

#: the participant roles that run a session (admit, mute, remove, promote, end)
STAFF_ROLES = frozenset(
    {
        ParticipantRole.OFFICER,
        ParticipantRole.CONVENER,
        ParticipantRole.MEDIATOR,
        ParticipantRole.TRAINER,
    }
)
#: session kinds whose newcomers wait in a lobby until a moderator admits them
LOBBY_KINDS = frozenset({SessionKind.CONFERENCE, SessionKind.MEDIATION})


def role_on_join(principal: Principal, s: SessionTarget) -> tuple[ParticipantRole, AdmissionState]:
    """The participant role and admission a principal gets when it joins ``s``.

    Only for a principal :func:`decide` lets join. Invitees take their invite's role (a party
    by default) and wait in the lobby of a conference or mediation, but watch a training as
    viewers; the convener's account convenes (mediates a mediation, trains a training); other
    officials are the officials of a visit, viewers of a training, members elsewhere (waiting
    in a lobby unless they are leaders); a terminal joining a session other than its visit is
    a party.
    """
    admitted = AdmissionState.ADMITTED
    is_convener = principal.account_id is not None and principal.account_id == s.convener_account_id
    if principal.kind is PrincipalKind.INVITE:
        role = principal.session_role or ParticipantRole.PARTY
        if s.kind is SessionKind.TRAINING:
            return ParticipantRole.VIEWER, admitted
        return role, AdmissionState.LOBBY if s.kind in LOBBY_KINDS else admitted
    if s.kind is SessionKind.TRAINING:
        return (ParticipantRole.TRAINER if is_convener else ParticipantRole.VIEWER), admitted
    if is_convener:
        return (
            ParticipantRole.MEDIATOR
            if s.kind is SessionKind.MEDIATION
            else ParticipantRole.CONVENER
        ), admitted
    if s.kind is SessionKind.VISIT:
        return ParticipantRole.OFFICIAL, admitted
    if principal.kind is PrincipalKind.TERMINAL:
        return (
            ParticipantRole.PARTY,
            AdmissionState.LOBBY if s.kind in LOBBY_KINDS else admitted,
        )
    if s.kind in LOBBY_KINDS and not principal.has(Role.LEADER):
        return ParticipantRole.MEMBER, AdmissionState.LOBBY
    return ParticipantRole.MEMBER, admitted


def require_moderator(
    principal: Principal,
    action: Action,
    s: SessionTarget,
    present_roles: Sequence[ParticipantRole],
    tree: OrgTree,
) -> None:
    """Raise AccessDenied unless ``principal`` may moderate ``s`` (``action``: moderate, end…).

    :func:`require` decides on scope and account roles; the session role narrows it:
    ``present_roles`` are the roles of the principal's present participant rows, oldest first.
    An official present as a viewer, speaker or plain member does not moderate, whatever its
    account roles (a reception officer watching a training must not promote people); leaders
    keep moderating the conferences they sit in.
    """
    require(principal, action, s, tree)
    if not present_roles or any(r in STAFF_ROLES for r in present_roles):
        return
    if s.kind is not SessionKind.TRAINING and principal.has(Role.LEADER):
        return
    raise AccessDenied(
        f"{principal.ref} is a {present_roles[-1].value} in session {s.id};"
        f" {action.value} needs the convener, mediator, trainer or officer"
    )


# ---- media: who publishes, who receives whom (the hub asks; the media worker enforces) --------


def may_publish(role: ParticipantRole) -> bool:
    """Training viewers watch; everybody else may publish."""
    return role is not ParticipantRole.VIEWER


def should_subscribe(
    kind: SessionKind, subscriber: ParticipantRole, publisher: ParticipantRole
) -> bool:
    """Who receives whose media."""
    if subscriber is ParticipantRole.FIELD:
        return False  # the field unit publishes only
    if kind is SessionKind.TRAINING:
        return publisher in (ParticipantRole.TRAINER, ParticipantRole.SPEAKER)
    return True
