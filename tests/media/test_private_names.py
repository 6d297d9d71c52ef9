"""``gateway/media/hooks.py`` is the only Python file that reaches aiortc's private names.

An aiortc upgrade that renames a private attribute then breaks one module, which
``hooks.check_hooks`` verifies at start, instead of code scattered over the project. Ruff's
SLF001 flags private access in general; this test flags aiortc's (and aioice's) in particular,
in every file including the tests, whatever the receiver's name: ``x._send_rtp``,
``x.__dict__["_RTCRtpReceiver__rtcp_ssrc"]``, ``getattr(x, "_rtp_router")``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import aioice
import aiortc

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "gateway" / "media" / "hooks.py"
OURS = ["config", "records", "signaling", "gateway", "recorder", "web", "tests", "bench", "scripts"]
#: the test of ``hooks.check_hooks`` deletes one of the names it checks, to see it named
ALLOWED = {("tests/media/test_media_units.py", "_send_rtcp_pli")}
MANGLED = re.compile(r"^_[A-Za-z]\w*__\w+$")  # a name-mangled attribute: _RTCRtpReceiver__x


def _python_files(*dirs: Path) -> Iterator[Path]:
    for d in dirs:
        yield from d.rglob("*.py")


def _our_files() -> Iterator[Path]:
    return _python_files(*(ROOT / d for d in OURS if (ROOT / d).is_dir()))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def _defined_private_names(files: Iterator[Path]) -> set[str]:
    """Private names a body of code defines: methods, attributes set on self, class attributes."""
    names: set[str] = set()
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        names.add(item.name)
                    for target in getattr(item, "targets", [getattr(item, "target", None)]):
                        if isinstance(target, ast.Name):
                            names.add(target.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return {n for n in names if _is_private(n)}


def _aiortc_private_names() -> set[str]:
    libraries = [Path(aiortc.__file__).parent, Path(aioice.__file__).parent]
    theirs = _defined_private_names(_python_files(*libraries))
    # hooks.py mirrors some of aiortc's names on its own classes: they do not count as ours
    ours = _defined_private_names(p for p in _our_files() if p != HOOKS)
    return theirs - ours


def _reaches(path: Path, forbidden: set[str]) -> list[str]:
    """Where a file reaches one of ``forbidden`` or any name-mangled private name."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Attribute) and node.attr in forbidden:
            name = node.attr
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and (node.value in forbidden or MANGLED.match(node.value))
        ):
            name = node.value
        if name is not None and (str(path.relative_to(ROOT)), name) not in ALLOWED:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    return found


def test_only_the_hooks_module_reaches_aiortc_private_names() -> None:
    forbidden = _aiortc_private_names()
    # the check sees what it is meant to see: aiortc's names, which the hooks module reaches
    assert {"_send_rtp", "_rtp_router", "_codecs", "_handle_rtp_data"} <= forbidden
    assert len(_reaches(HOOKS, forbidden)) >= 20
    offenders = [
        hit
        for path in _our_files()
        if path != HOOKS and path != Path(__file__).resolve()
        for hit in _reaches(path, forbidden)
    ]
    assert offenders == [], "route these through gateway/media/hooks.py"
