"""Printable HTML from the templates in this folder (``string.Template``, every value escaped).

A template names its values as ``$name`` / ``${name}``; :func:`render` HTML-escapes every
value except those wrapped in :class:`Safe` (fragments this module or its callers built from
escaped parts). A missing value is an error, never an empty hole in a notice. Templates are
read once, when this module is imported, never on the event loop.
"""

from __future__ import annotations

import html
import string
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["Safe", "escape", "render", "table"]

_DIR = Path(__file__).resolve().parent
_TEMPLATES: Mapping[str, string.Template] = {
    p.name: string.Template(p.read_text(encoding="utf-8")) for p in sorted(_DIR.glob("*.html"))
}


class Safe(str):
    """Markup that is already escaped; :func:`render` inserts it as it is."""

    __slots__ = ()


def escape(value: object) -> Safe:
    """``value`` as HTML text (``None`` → empty); :class:`Safe` values pass unchanged."""
    if isinstance(value, Safe):
        return value
    if value is None:
        return Safe("")
    return Safe(html.escape(str(value), quote=True))


def render(name: str, values: Mapping[str, object]) -> str:
    """The template ``name`` with ``values`` substituted (escaped unless :class:`Safe`).

    Raises:
        KeyError: no such template, or the template names a value that was not given.
    """
    template = _TEMPLATES[name]
    return template.substitute({k: escape(v) for k, v in values.items()})


def table(rows: Iterable[Iterable[object]], *, head: Iterable[object] = ()) -> Safe:
    """An HTML table of escaped cells (a header row first when ``head`` is given)."""
    out = ["<table>"]
    head = list(head)
    if head:
        out.append("<tr>" + "".join(f"<th>{escape(c)}</th>" for c in head) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return Safe("".join(out))
