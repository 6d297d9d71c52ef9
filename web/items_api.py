"""REST API of petition items (issue: petition items). Routes are added here."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
