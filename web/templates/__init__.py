"""Printable HTML from the Jinja2 templates in this folder, every value escaped.

Autoescaping is on for every template: a value is inserted as :func:`html.escape` writes it
(quotes included) and ``None`` as nothing, so Python code hands over plain data and never
builds markup. A missing value is an error (``StrictUndefined``), never an empty hole in a
notice. Templates are read and compiled once, when this module is imported, never on the
event loop. Names starting with ``_`` hold macros (``_table.html``), not pages.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

from jinja2 import DictLoader, Environment, StrictUndefined, Template
from markupsafe import Markup

__all__ = ["render"]

_DIR = Path(__file__).resolve().parent


def _escaped(value: object) -> Markup:
    """``value`` as HTML text; markup from a macro passes unchanged."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    return Markup(html.escape(str(value), quote=True))


_ENV = Environment(
    loader=DictLoader({p.name: p.read_text(encoding="utf-8") for p in sorted(_DIR.glob("*.html"))}),
    autoescape=True,
    undefined=StrictUndefined,
    finalize=_escaped,
    keep_trailing_newline=True,
    auto_reload=False,
)
# Compiled here, macros included, so that no render compiles or reads a file.
_COMPILED = {name: _ENV.get_template(name) for name in _ENV.list_templates()}
_TEMPLATES: Mapping[str, Template] = {
    name: template for name, template in _COMPILED.items() if not name.startswith("_")
}


def render(name: str, values: Mapping[str, object]) -> str:
    """The template ``name`` rendered with ``values`` (every value escaped).

    Raises:
        KeyError: no such template.
        jinja2.UndefinedError: the template names a value that was not given.
    """
    return _TEMPLATES[name].render(values)
