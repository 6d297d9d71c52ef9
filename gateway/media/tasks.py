"""Owning asyncio tasks: cancel and wait, without swallowing our own cancellation."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` and wait until they have finished.

    The tasks' own ``CancelledError`` (or other errors, already logged by their owners) are
    collected, not raised; if the caller itself is cancelled meanwhile, that propagates.
    """
    live = [t for t in tasks if t is not None]
    for task in live:
        task.cancel()
    if live:
        await asyncio.gather(*live, return_exceptions=True)
