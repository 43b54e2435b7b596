"""The API's schema and interactive docs, both behind staff auth: `/api/openapi.json` and
`/api/docs` (Swagger UI).

Swagger UI's files come from the `swagger-ui-py` package (Swagger UI 5, Apache-2.0; its LICENSE
is served beside them at /api/docs/assets/LICENSE) and are served by us: no CDN. Only this page's
CSP allows scripts and stylesheets, and only from our own origin (digest/web/security.py).
The schema describes every route under /api (the public subscribe API included) and nothing
else: the HTML pages are not an API.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from digest.render.email import templates_dir
from digest.web.apierrors import api_error
from digest.web.pages import environment
from digest.web.site import site_of
from digest.web.staffauth import Staff, staff

router = APIRouter(prefix="/api", dependencies=[Depends(staff)])

DOCS = "/api/docs"
# name -> (file, content type). Nothing else is served from the assets path.
_SWAGGER = {
    "swagger-ui.css": ("swagger-ui.css", "text/css; charset=utf-8"),
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "LICENSE": ("LICENSE", "text/plain; charset=utf-8"),
}
DESCRIPTION = (
    "The staff API of digest. Every route needs a staff token (`Authorization: Bearer TOKEN`, "
    "from `digest staff token EMAIL`) or the console's session cookie (with `X-CSRF-Token` on "
    "unsafe requests), except the public `/api/subscribe`, `/api/resend` and `/api/consent`. "
    'Errors are `{"status": "error", "error": {"field", "message"}}`.'
)


@cache
def swagger_dir() -> Path:
    spec = importlib.util.find_spec("swagger_ui")  # without importing it (it needs no running)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is missing: pip install swagger-ui-py")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def schema(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of the /api routes, built once per app."""
    found: dict[str, Any] | None = getattr(app.state, "api_schema", None)
    if found is None:
        document = get_openapi(
            title=f"{app.state.settings.newsletter.title} (digest API)",
            version="1",
            description=DESCRIPTION,
            routes=app.routes,
        )
        found = only_api(document)
        app.state.api_schema = found
    return found


def only_api(document: dict[str, Any]) -> dict[str, Any]:
    """The document without the HTML pages' paths, and without the schemas only they used."""
    paths = {p: ops for p, ops in document.get("paths", {}).items() if p.startswith("/api/")}
    schemas = document.get("components", {}).get("schemas", {})
    wanted: set[str] = set()
    todo = _refs(paths)
    while todo:
        name = todo.pop()
        if name not in wanted and name in schemas:
            wanted.add(name)
            todo |= _refs(schemas[name])
    components = dict(document.get("components", {}))
    components["schemas"] = {n: s for n, s in schemas.items() if n in wanted}
    return {**document, "paths": paths, "components": components}


def _refs(node: Any) -> set[str]:
    """The component schemas `node` refers to ("#/components/schemas/Name")."""
    if isinstance(node, dict):
        found = set()
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, who: Staff) -> JSONResponse:
    return JSONResponse(schema(request.app))


@router.get("/docs", include_in_schema=False)
def docs(request: Request, who: Staff) -> HTMLResponse:
    site = site_of(request)
    html = (
        environment()
        .get_template("api_docs.html")
        .render(publication=site.settings.publication.name, csrf_token=who.csrf_token or "")
    )
    return HTMLResponse(html)


@router.get("/docs/assets/{name}", include_in_schema=False)
def asset(name: str, who: Staff) -> Response:
    if name == "docs.js":
        path, kind = templates_dir() / "web" / "api_docs.js", "text/javascript; charset=utf-8"
    elif name in _SWAGGER:
        file, kind = _SWAGGER[name]
        path = swagger_dir() / file
    else:
        return api_error(404, f"no asset {name!r}")
    return FileResponse(path, media_type=kind, headers={"Cache-Control": "private, max-age=3600"})
