"""REST API of petition items: registration, lifecycle actions, notices, backlog cases, statistics.

Every route asks the policy (``authorize``, which audit-logs refusals) and every read of an
item is audit-logged. Lifecycle actions act for the unit that holds the item now (its
handling unit, or the registering unit before routing): the policy is asked on a target made
of that unit alone, so a unit that transferred an item away can still read it but no longer
moves it. The public routes under ``/api/public/`` need no login; they answer with states and
dates only, and a failed evaluation never says whether the code or the phone digits were
wrong. Each route declares its models beside it (``web.rest.operation``); ``web.apidoc``
generates the OpenAPI document from them.

The routes are grouped by concern, one module each; :data:`routes` lists them in the order
they are matched (fixed paths such as ``/api/items/due`` before ``/api/items/{item_id}``).
Shared parsers and loading live in :mod:`web.items.common`, wire forms in
:mod:`web.items.wire`, the lifecycle action table in :mod:`web.items.actions`; printable
notices and reports are rendered from the templates under ``web/templates/``.
"""

from aiohttp import web

from web.items import (
    attachments,
    backlog,
    figures,
    lifecycle,
    notices,
    privacy,
    public,
    reading,
    registration,
    stats,
    visits,
)

__all__ = ["routes"]

#: every item route, in the order aiohttp matches them
routes: list[web.AbstractRouteDef] = [
    *registration.routes,
    *reading.routes,
    *lifecycle.routes,
    *notices.routes,
    *public.routes,
    *privacy.routes,
    *attachments.routes,
    *backlog.routes,
    *stats.routes,
    *figures.routes,
    *visits.routes,
]
