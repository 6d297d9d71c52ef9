"""The rules inside a session: the role a joiner gets, and who may moderate.

Pure rules of ``records.policy`` on plain values; the WebSocket tests (``tests/signaling``)
exercise the same rules through the hub.
"""

from __future__ import annotations

import pytest

from config.errors import AccessDenied
from records.enums import (
    AdmissionState,
    ParticipantRole,
    PrincipalKind,
    Role,
    SessionKind,
    UnitLevel,
)
from records.orgs import OrgTree, Unit
from records.policy import Action, SessionTarget, require_moderator, role_on_join
from records.principals import Principal

A = AdmissionState.ADMITTED
L = AdmissionState.LOBBY
R = ParticipantRole
UNIT = 1
TREE = OrgTree((Unit(UNIT, "QX-XFJ", "区信访局", UnitLevel.DISTRICT, None, True, False, True),))


def account(i: int, *roles: Role) -> Principal:
    return Principal(PrincipalKind.ACCOUNT, str(i), UNIT, f"干部{i}", frozenset(roles))


TERMINAL = Principal(PrincipalKind.TERMINAL, "7", UNIT, "和平社区终端", frozenset())


def invite(role: ParticipantRole | None) -> Principal:
    return Principal(
        PrincipalKind.INVITE,
        "inv1",
        None,
        "当事人",
        frozenset(),
        session_id="s1",
        session_role=role,
    )


def session(kind: SessionKind, convener: int | None = 1) -> SessionTarget:
    return SessionTarget(id="s1", kind=kind, unit_id=UNIT, convener_account_id=convener)


K = SessionKind


@pytest.mark.parametrize(
    ("who", "kind", "expected"),
    [
        # the convener's account runs the session in the role of its kind
        (account(1, Role.LEADER), K.CONFERENCE, (R.CONVENER, A)),
        (account(1, Role.MEDIATOR), K.MEDIATION, (R.MEDIATOR, A)),
        (account(1, Role.TRAINER), K.TRAINING, (R.TRAINER, A)),
        (account(1, Role.RECEPTION), K.CALL, (R.CONVENER, A)),
        # other officials
        (account(2, Role.RECEPTION), K.VISIT, (R.OFFICIAL, A)),
        (account(2, Role.LEADER), K.TRAINING, (R.VIEWER, A)),
        (account(2, Role.RECEPTION), K.CONFERENCE, (R.MEMBER, L)),
        (account(2, Role.RECEPTION), K.MEDIATION, (R.MEMBER, L)),
        (account(2, Role.LEADER), K.CONFERENCE, (R.MEMBER, A)),  # leaders skip the lobby
        (account(2, Role.RECEPTION), K.CALL, (R.MEMBER, A)),
        (account(2, Role.RECEPTION), K.FIELD, (R.MEMBER, A)),
        # a terminal joining a session other than its own visit is a party
        (TERMINAL, K.MEDIATION, (R.PARTY, L)),
        (TERMINAL, K.CALL, (R.PARTY, A)),
        # invitees: their invite's role, in the lobby where there is one; viewers of a training
        (invite(R.LAWYER), K.MEDIATION, (R.LAWYER, L)),
        (invite(None), K.CONFERENCE, (R.PARTY, L)),
        (invite(R.PARTY), K.CALL, (R.PARTY, A)),
        (invite(R.LAWYER), K.TRAINING, (R.VIEWER, A)),
    ],
)
def test_role_on_join(
    who: Principal, kind: SessionKind, expected: tuple[ParticipantRole, AdmissionState]
) -> None:
    assert role_on_join(who, session(kind)) == expected


def test_a_session_without_a_convener_makes_nobody_its_convener() -> None:
    assert role_on_join(account(1, Role.LEADER), session(K.CONFERENCE, None)) == (R.MEMBER, A)


@pytest.mark.parametrize(
    ("who", "kind", "present", "allowed"),
    [
        # not present (moderating from the console) or present in a staff role: the policy decides
        (account(1, Role.RECEPTION), K.CONFERENCE, [], True),
        (account(1, Role.RECEPTION), K.CONFERENCE, [R.CONVENER], True),
        (account(1, Role.TRAINER), K.TRAINING, [R.TRAINER], True),
        (account(1, Role.RECEPTION), K.VISIT, [R.OFFICER], True),
        # present as a plain member, viewer or speaker: refused, whatever the account's roles
        (account(2, Role.RECEPTION), K.CONFERENCE, [R.MEMBER], False),
        (account(2, Role.RECEPTION), K.TRAINING, [R.VIEWER], False),
        (account(2, Role.TRAINER), K.TRAINING, [R.SPEAKER], False),
        # leaders keep moderating conferences they sit in, but not a training they watch
        (account(2, Role.LEADER), K.CONFERENCE, [R.MEMBER], True),
        (account(2, Role.LEADER), K.TRAINING, [R.VIEWER], False),
        # one staff row among others is enough
        (account(2, Role.RECEPTION), K.CONFERENCE, [R.MEMBER, R.CONVENER], True),
    ],
)
def test_require_moderator(
    who: Principal, kind: SessionKind, present: list[ParticipantRole], allowed: bool
) -> None:
    s = session(kind)
    if allowed:
        require_moderator(who, Action.MODERATE_SESSION, s, present, TREE)
        return
    with pytest.raises(AccessDenied) as err:
        require_moderator(who, Action.MODERATE_SESSION, s, present, TREE)
    assert str(err.value) == (
        f"account:2 is a {present[-1].value} in session s1;"
        " moderate_session needs the convener, mediator, trainer or officer"
    )


def test_require_moderator_asks_the_policy_first() -> None:
    terminal_staff = [R.CONVENER]  # a staff row does not lift the policy's refusal
    with pytest.raises(AccessDenied):
        require_moderator(
            TERMINAL, Action.MODERATE_SESSION, session(K.CONFERENCE), terminal_staff, TREE
        )
