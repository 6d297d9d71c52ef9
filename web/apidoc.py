"""The OpenAPI 3.1 document, generated from the routes' declared operations.

Each ``/api`` handler declares its :class:`web.rest.Operation` beside it; this module walks
the application's router, turns the request and answer models into JSON Schema (pydantic's
``$defs`` become ``components/schemas``) and serves the result at ``/api/openapi.json``.
Nothing here describes a route by hand: a route without a declaration is missing from the
document, and the coverage test (``tests/api/test_items_api_fuzz.py``) names it.

Every error answer is ``{"error": {"code", "message"}}`` (the ``default`` response); an
illegal lifecycle transition adds ``state`` and ``allowed_actions``.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from web import rest

__all__ = ["build_document", "routes"]

Schema = dict[str, Any]
routes = web.RouteTableDef()

#: the document, built on its first request (the router is frozen by then)
DOCUMENT = web.AppKey("DOCUMENT", dict)

ERROR_DESCRIPTION = (
    "Error: 401 not signed in, 403 refused by the policy or CSRF, 404 not found (or a failed "
    "evaluation), 409 conflict or illegal transition, 413 too large, 415 not JSON or a file "
    "type not allowed, 422 invalid input, 429 rate limited."
)
REF = "#/components/schemas/{model}"

INFO = {
    "title": "petition-gateway API",
    "version": "1",
    "description": (
        "REST API of the video petition gateway. Officials sign in with POST /api/login "
        "(cookie pg_session; state-changing requests also send the X-CSRF-Token header "
        "from the login answer); terminals and invite holders send a bearer token. "
        "/api/public/ needs no login. Every /api route is rate-limited per address."
    ),
}
SECURITY_SCHEMES = {
    "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "pg_session"},
    "csrfToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
        "description": "the csrf_token of the login answer; needed on POST/PUT/DELETE",
    },
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "a terminal's device credential (pgt_…) or an invite (pgi_…)",
    },
}


def operations(app: web.Application) -> list[tuple[str, str, rest.Operation | None]]:
    """Every ``/api`` route as (method, path, its declared operation or None)."""
    out = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if not path.startswith("/api/") or route.method in ("HEAD", "OPTIONS"):
            continue
        out.append((route.method, path, rest.operation_of(route.handler)))
    return out


def _parameters(where: Literal["query", "path"], schema: Schema) -> list[Schema]:
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        if "default" in prop and prop["default"] is None:
            del prop["default"]
        # an optional parameter is absent, never null: keep the non-null branch
        branches = [b for b in prop.get("anyOf", ()) if b != {"type": "null"}]
        if len(branches) == 1:
            prop = {**{k: v for k, v in prop.items() if k != "anyOf"}, **branches[0]}
        param: Schema = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": prop,
        }
        if description:
            param["description"] = description
        out.append(param)
    return out


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def build_document(app: web.Application) -> Schema:
    """The OpenAPI document of ``app``'s declared ``/api`` routes (a fresh dict)."""
    ops = [(m, p, op) for m, p, op in operations(app) if op is not None]
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(rest.Error, "serialization")]
    for _, _, op in ops:
        if op.response is not None:
            wanted.append((op.response, "serialization"))
        for model in (op.body, op.query, op.path):
            if model is not None:
                wanted.append((model, "validation"))
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    schemas: Schema = defs.get("$defs", {})

    def inline(model: type[BaseModel], mode: JsonSchemaMode) -> Schema:
        # parameters are listed one by one, not referenced: their model is no component
        name = refs[(model, mode)]["$ref"].rsplit("/", 1)[1]
        return dict(schemas[name])

    paths: Schema = {}
    parameter_models: set[str] = set()
    for method, path, op in ops:
        responses: Schema = {
            "default": {
                "description": ERROR_DESCRIPTION,
                "content": _json(refs[(rest.Error, "serialization")]),
            }
        }
        if op.media is not None:
            content = {media: {"schema": schema} for media, schema in op.media.items()}
        else:
            schema = refs[(op.response, "serialization")] if op.response is not None else {}
            content = _json(schema)
        responses[str(op.status)] = {"description": op.description, "content": content}
        spec: Schema = {"summary": op.summary, "tags": [op.tag], "responses": responses}
        params: list[Schema] = []
        for where, model in (("path", op.path), ("query", op.query)):
            if model is not None:
                params += _parameters(where, inline(model, "validation"))  # type: ignore[arg-type]  # the loop's literal pair
                parameter_models.add(refs[(model, "validation")]["$ref"].rsplit("/", 1)[1])
        if params:
            spec["parameters"] = params
        if op.body is not None:
            spec["requestBody"] = {
                "required": op.body_required,
                "content": _json(refs[(op.body, "validation")]),
            }
        elif op.body_media is not None:
            spec["requestBody"] = {
                "required": True,
                "content": {media: {"schema": s} for media, s in op.body_media.items()},
            }
        if op.public:
            spec["security"] = []
        paths.setdefault(path, {})[method.lower()] = spec
    for name in parameter_models:
        schemas.pop(name, None)
    return {
        "openapi": "3.1.0",
        "info": dict(INFO),
        "servers": [{"url": "/"}],
        "security": [{"cookieAuth": [], "csrfToken": []}, {"bearerAuth": []}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }


class Document(rest.Wire):
    """Any JSON object (the document itself)."""

    model_config = ConfigDict(extra="allow", frozen=True)


@routes.get("/api/openapi.json")
@rest.operation("This document", tag="meta", response=Document, public=True)
async def openapi_document(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of every /api route (public: it holds no data)."""
    cache = request.app.get(DOCUMENT)
    if cache is None:
        return web.json_response(build_document(request.app))
    if not cache:
        cache.update(build_document(request.app))
    return web.json_response(cache)
