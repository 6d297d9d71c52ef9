"""The browser apps: static HTML, CSS and JavaScript modules served from ``web/static``.

No build step and no CDN: government networks are offline. Official pages redirect to the
login page when nobody is signed in (the auth middleware); the kiosk, invite and field pages
authenticate with their token in the page's fragment, and the lookup page is public.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from web.auth import PRINCIPAL

STATIC = Path(__file__).resolve().parent / "static"

#: path → page file under ``web/static`` (tests/foundation/test_pages.py: each one exists)
PAGES = {
    "/login": "login.html",
    "/console": "console.html",
    "/kiosk": "kiosk.html",
    "/room": "room.html",
    "/training": "training.html",
    "/join": "join.html",
    "/field": "field.html",
    "/library": "library.html",
    "/dashboard": "dashboard.html",
    "/report": "report.html",
    "/lookup": "lookup.html",
    "/items": "items.html",
    # one page for every item: the page reads the lookup code from its path
    "/items/{code}": "item.html",
    "/duty": "duty.html",
    "/announcements": "announcements.html",
    "/backlog": "backlog.html",
}


def _page(name: str) -> web.RouteDef:
    async def handler(request: web.Request) -> web.StreamResponse:
        path = STATIC / name
        if not path.is_file():
            raise web.HTTPNotFound(reason=f"page {name} is not installed")
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    return web.get(PAGE_PATH[name], handler)


PAGE_PATH = {v: k for k, v in PAGES.items()}


async def favicon(request: web.Request) -> web.StreamResponse:
    """``/favicon.ico``: browsers ask for it on every page; the pages also link the SVG."""
    return web.FileResponse(
        STATIC / "favicon.svg",
        headers={"Content-Type": "image/svg+xml", "Cache-Control": "max-age=86400"},
    )


async def index(request: web.Request) -> web.StreamResponse:
    """``/``: officials go to the console, everybody else to the login page."""
    raise web.HTTPFound("/console" if request.get(PRINCIPAL) is not None else "/login")


def add_routes(app: web.Application) -> None:
    """Register the pages and the static folder."""
    app.router.add_get("/", index)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_routes([_page(name) for name in PAGES.values()])
    STATIC.mkdir(exist_ok=True)
    app.router.add_static("/static/", STATIC, follow_symlinks=False, append_version=False)
