"""Which client text can be stored: valid Unicode without NUL, in bounded JSON.

PostgreSQL refuses NUL in ``text`` columns and UTF-8 cannot encode a lone surrogate (what
JSON escapes of U+D800..U+DFFF decode to), so such text fails at the database or at the
socket, long after it was accepted. The edges (``signaling/protocol.py``, ``web/input.py``) ask this
module once per message or request, before anything downstream sees the text: SQLite and
PostgreSQL then behave alike.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

#: JSON deeper than this is refused (no message of ours nests more than 3 levels)
MAX_DEPTH = 32

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclasses.dataclass(frozen=True, slots=True)
class Unstorable:
    """Where a text that cannot be stored was found, and why."""

    where: str  # a path into the value: ``text``, ``candidate.sdpMid``, ``roles[2]``, ``key …``
    position: int  # the character's index in that text
    char: str

    @property
    def what(self) -> str:
        """The offending character, named."""
        if self.char == "\x00":
            return "a NUL character"
        return f"a lone surrogate U+{ord(self.char):04X}"

    def __str__(self) -> str:
        return (
            f"{self.where[:120] or 'the text'} has {self.what} at character {self.position}: "
            "text must be valid Unicode without NUL"
        )


class TooDeep(ValueError):
    """A JSON value nested deeper than :data:`MAX_DEPTH`."""


def unstorable_char(text: str, where: str = "") -> Unstorable | None:
    """The first NUL or lone surrogate of ``text``, or None."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    return Unstorable(where, match.start(), match.group())


def find_unstorable(value: Any, max_depth: int = MAX_DEPTH) -> Unstorable | None:
    """The first unstorable text anywhere in a decoded JSON value (keys included), or None.

    Walks without recursion, so it is safe on any value ``json.loads`` returned.

    Raises:
        TooDeep: the value nests lists and objects deeper than ``max_depth``.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            found = unstorable_char(item, path)
            if found is not None:
                return found
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise TooDeep(f"JSON nested deeper than {max_depth} levels at {path[:80] or '$'}")
            if isinstance(item, dict):
                for key, sub in item.items():
                    found = unstorable_char(key, f"key {path + '.' if path else ''}{key[:40]!r}")
                    if found is not None:
                        return found
                    stack.append((sub, f"{path}.{key}" if path else key, depth + 1))
            else:
                stack.extend((sub, f"{path}[{i}]", depth + 1) for i, sub in enumerate(item))
    return None
