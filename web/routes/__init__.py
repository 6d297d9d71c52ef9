"""REST routes of the foundation, one module per concern (items are in ``web.items``).

Each handler declares its OpenAPI operation beside it (:func:`web.rest.operation`); answers
and bodies are the models of :mod:`web.wire`.
"""

from aiohttp import web

from web.routes import admin, announcements, duty, health, login, orgs, sessions

__all__ = ["routes"]

#: every foundation route
routes: list[web.AbstractRouteDef] = [
    *health.routes,
    *login.routes,
    *orgs.routes,
    *sessions.routes,
    *admin.routes,
    *announcements.routes,
    *duty.routes,
]
