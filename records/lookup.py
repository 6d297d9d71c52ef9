"""Lookup codes (查询码): what a petitioner types to check progress and to rate handling.

A code is 9 random characters plus 1 check character from a 31-symbol alphabet without the
look-alikes 0/O, 1/I/L (about 44.6 bits of randomness from :mod:`secrets`, never
sequential). The check character is a weighted sum modulo 31 (a prime), which catches every
single mistyped character and every swap of two neighbouring characters. Printed as
``ABCDE-FGHJK``; input is accepted in any case, with spaces or dashes.
"""

from __future__ import annotations

import secrets

from config.errors import ValidationError

__all__ = ["ALPHABET", "CODE_LENGTH", "format_code", "is_valid", "new_code", "normalise"]

#: 8 digits and 23 letters; no 0, O, 1, I, L
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
#: characters in a code, check character included
CODE_LENGTH = 10
_BODY = CODE_LENGTH - 1
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
_MOD = len(ALPHABET)  # 31, prime: every weight is invertible
_SEPARATORS = str.maketrans("", "", " -_\t\u3000\u2010\u2011\u2012\u2013\u2014\uff0d")


def _check_char(body: str) -> str:
    # Weights 1..9 are distinct and non-zero modulo 31, so a changed character or a swap of
    # two different characters always changes the sum.
    total = sum((i + 1) * _INDEX[ch] for i, ch in enumerate(body))
    return ALPHABET[total % _MOD]


def new_code() -> str:
    """A fresh random lookup code, 10 characters, unformatted."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(_BODY))
    return body + _check_char(body)


def normalise(text: str) -> str:
    """The canonical form of a typed code: upper case, no spaces or dashes, check verified.

    Full-width letters and digits (typed with a Chinese input method) are accepted.

    Raises:
        ValidationError: wrong length, a character outside the alphabet, or a wrong check
            character (a typo).
    """
    # NFKC-like folding of full-width ASCII (Ａ -> A) without importing unicodedata tables.
    folded = "".join(
        chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" and c != "\uff0d" else c for c in text
    )
    code = folded.translate(_SEPARATORS).upper()
    if len(code) != CODE_LENGTH:
        raise ValidationError(
            f"a lookup code has {CODE_LENGTH} characters, {text!r} has {len(code)}"
        )
    bad = sorted({c for c in code if c not in _INDEX})
    if bad:
        raise ValidationError(
            f"lookup code {text!r} contains {''.join(bad)!r}, which no code uses "
            "(codes have no 0, O, 1, I or L)"
        )
    if _check_char(code[:_BODY]) != code[_BODY]:
        raise ValidationError(f"lookup code {text!r} is mistyped (check character does not match)")
    return code


def is_valid(text: str) -> bool:
    """Whether ``text`` normalises to a well-formed code."""
    try:
        normalise(text)
    except ValidationError:
        return False
    return True


def format_code(code: str) -> str:
    """The printed form, ``ABCDE-FGHJK``, of a canonical or typed code."""
    canonical = normalise(code)
    return f"{canonical[:5]}-{canonical[5:]}"
