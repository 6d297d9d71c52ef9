"""Body models refuse bad input in the very words the hand checks of web.input used.

The API's clients and tests know those messages (which field, which limits, the offending
value); a route whose body moved from ``web.input`` to a model must not change them.
"""

from __future__ import annotations

from typing import Annotated, Any

import pytest

from config.errors import ValidationError
from web import input as hand
from web.items.common import boolean
from web.rest import Bool, Choice, Int, Request, Text, parse_body
from web.wire import INVITE_ROLES, AccountBody, InviteBody


class _Body(Request):
    name: Annotated[str, Text(20)]
    note: Annotated[str, Text(20, min_len=0)] = ""
    count: Annotated[int, Int(1, 30)]
    role: Annotated[str, Choice(INVITE_ROLES)]
    flag: Bool = None


def _hand(data: dict[str, Any]) -> None:
    hand.text(data, "name", max_len=20)
    hand.text(data, "note", max_len=20, required=False)
    hand.integer(data, "count", lo=1, hi=30)
    hand.choice(data, "role", INVITE_ROLES)
    boolean(data, "flag")


GOOD = {"name": "张三", "count": 3, "role": "lawyer"}


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"name": None},
        {"name": 5},
        {"name": "   "},
        {"name": "x" * 21},
        {"note": 5},
        {"note": "x" * 21},
        {"count": None},
        {"count": "3"},
        {"count": True},
        {"count": 31},
        {"count": 2.5},
        {"role": None},
        {"role": "admin"},
        {"flag": "yes"},
    ],
)
def test_a_refusal_reads_as_the_hand_check_did(bad: dict[str, Any]) -> None:
    data = {**GOOD, **bad} if bad else {}  # null stands for absent, as it always did
    with pytest.raises(ValidationError) as by_hand:
        _hand(data)
    with pytest.raises(ValidationError) as by_model:
        parse_body(_Body, data)
    assert str(by_model.value) == str(by_hand.value)


def test_accepted_values_are_the_hand_checks_values() -> None:
    body = parse_body(_Body, {**GOOD, "name": "  张三 ", "note": " ", "extra": 1})
    assert (body.name, body.note, body.count, body.role, body.flag) == (
        "张三",
        "",
        3,
        "lawyer",
        None,
    )


def test_the_roles_and_the_invite_roles_keep_their_messages() -> None:
    with pytest.raises(ValidationError, match=r"field 'roles' must be a non-empty list"):
        parse_body(AccountBody, {"unit_id": 1, "username": "a", "name": "b"})
    with pytest.raises(ValidationError, match=r"unknown role in \['boss'\]"):
        parse_body(AccountBody, {"unit_id": 1, "roles": ["boss"], "username": "a", "name": "b"})
    with pytest.raises(ValidationError, match=r"field 'role' must be one of \['lawyer', "):
        parse_body(InviteBody, {"role": "admin", "name": "x"})
