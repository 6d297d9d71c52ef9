"""A tiny Prometheus text-format registry (counters and gauges with labels)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """Counters incremented by handlers and gauges read from callbacks at scrape time."""

    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, float]] = {}
        self._help: dict[str, str] = {}
        self._gauges: list[Callable[[], Awaitable[dict[str, Any]]]] = []

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Add ``value`` to counter ``name`` with ``labels``."""
        key = tuple(sorted(labels.items()))
        series = self._counters.setdefault(name, {})
        series[key] = series.get(key, 0.0) + value

    def describe(self, name: str, text: str) -> None:
        """Set the HELP text of a metric."""
        self._help[name] = text

    def add_gauges(self, source: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        """Register a callback returning {name: value or {labels-tuple: value}} at scrape time."""
        self._gauges.append(source)

    async def render(self) -> str:
        """The exposition text."""
        lines: list[str] = []
        for name, series in sorted(self._counters.items()):
            if name in self._help:
                lines.append(f"# HELP {name} {self._help[name]}")
            lines.append(f"# TYPE {name} counter")
            for labels, value in series.items():
                lines.append(f"{name}{_fmt(labels)} {value:g}")
        for source in self._gauges:
            for name, value in sorted((await source()).items()):
                if name in self._help:
                    lines.append(f"# HELP {name} {self._help[name]}")
                lines.append(f"# TYPE {name} gauge")
                if isinstance(value, dict):
                    for labels, v in value.items():
                        lines.append(f"{name}{_fmt(labels)} {float(v):g}")
                else:
                    lines.append(f"{name} {float(value):g}")
        return "\n".join(lines) + "\n"


def _fmt(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels
    )
    return "{" + inner + "}"
