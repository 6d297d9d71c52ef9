"""Lookup codes: printable, unguessable, typo-catching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.errors import ValidationError
from records.lookup import ALPHABET, CODE_LENGTH, format_code, is_valid, new_code, normalise

codes = st.builds(lambda _: new_code(), st.integers())


def test_alphabet_has_no_lookalikes() -> None:
    assert not set("0O1IL") & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET) == 31


def test_codes_are_random_not_sequential() -> None:
    drawn = [new_code() for _ in range(2000)]
    assert len(set(drawn)) == len(drawn)
    assert all(len(c) == CODE_LENGTH and set(c) <= set(ALPHABET) for c in drawn)
    # Every position uses the whole alphabet (nothing like a counter in front).
    for pos in range(CODE_LENGTH - 1):
        assert len({c[pos] for c in drawn}) == len(ALPHABET)


@given(
    codes,
    st.sampled_from([str.lower, str.upper, lambda s: " ".join(s), lambda s: s[:5] + "-" + s[5:]]),
)
def test_typed_forms_normalise_back(code: str, typed: object) -> None:
    assert normalise(typed(code)) == code  # type: ignore[operator]
    assert format_code(code) == f"{code[:5]}-{code[5:]}"


@given(codes, st.integers(0, CODE_LENGTH - 1), st.sampled_from(ALPHABET))
def test_any_single_typo_is_caught(code: str, pos: int, ch: str) -> None:
    if code[pos] == ch:
        return
    typo = code[:pos] + ch + code[pos + 1 :]
    assert not is_valid(typo)


@given(codes, st.integers(0, CODE_LENGTH - 2))
def test_any_adjacent_swap_is_caught(code: str, pos: int) -> None:
    if code[pos] == code[pos + 1]:
        return
    swapped = code[:pos] + code[pos + 1] + code[pos] + code[pos + 2 :]
    assert not is_valid(swapped)


@pytest.mark.parametrize(
    ("text", "message"),
    [("ABC", "has 10 characters"), ("ABCDE-FGH0K", "contains '0'"), ("abcdefghik", "contains 'I'")],
)
def test_bad_input_says_why(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        normalise(text)


def test_fullwidth_input_from_chinese_ime() -> None:
    code = new_code()
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in code)
    assert normalise(fullwidth) == code
