"""Typed application keys under which the composition root stores long-lived services."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from config.ratelimit import FailureLimit
from config.settings import Settings
from records.calendar import HolidayCalendar
from records.keyring import DataKeyring
from records.store import Store
from web.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
THROTTLE = web.AppKey("login_throttle", FailureLimit)
METRICS = web.AppKey("metrics", Metrics)
CALENDAR = web.AppKey("holiday_calendar", HolidayCalendar)
#: seals identity numbers at rest (records/keyring.py)
KEYRING = web.AppKey("data_keyring", DataKeyring)


class HubPushes(Protocol):
    """What the HTTP edge asks of the signaling hub (signaling.hub.Hub implements it)."""

    bus: Any

    async def announce(self, announcement: Any) -> None:
        """Push an announcement to the terminals in scope."""

    async def invite_revoked(self, session_id: str, invite_id: str) -> None:
        """Remove a participant whose invite was revoked."""

    async def terminal_revoked(self, terminal_id: int) -> None:
        """Disconnect a terminal whose credential was revoked."""


HUB = web.AppKey("hub", HubPushes)
