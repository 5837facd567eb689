"""The page for people at `/`, its static files at `/static/`, and the interactive API docs at `/docs`.

Everything the page and the docs load is served from `app/static/` (Swagger UI is vendored from the npm package
`swagger-ui-dist`), so both work on a network with no internet access.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from litestar import MediaType, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityRequirement
from litestar.static_files import create_static_files_router

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The page is ES modules, which browsers run only when served with a JavaScript MIME type: RFC 9239's, whatever the
# host's /etc/mime.types says (Python's own table gives application/javascript before 3.12).
mimetypes.add_type("text/javascript", ".js")
SWAGGER_DIR = "/static/vendor/swagger-ui"

# The page loads only what we serve; inline scripts and styles are not used by it.
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_NO_CACHE = CacheControlHeader(no_cache=True)


@get("/", include_in_schema=False, sync_to_thread=False, cache_control=_NO_CACHE)
def index() -> Response[bytes]:
    """Serve the transcription page."""
    return Response(
        (STATIC_DIR / "index.html").read_bytes(),
        media_type=MediaType.HTML,
        headers={"Content-Security-Policy": _PAGE_CSP, "X-Content-Type-Options": "nosniff"},
    )


def ui_router() -> Router:
    """Routes for `/` and `/static/...`; no authentication belongs on them (the page holds no data)."""
    static = create_static_files_router(
        path="/static",
        directories=[STATIC_DIR],
        include_in_schema=False,
        cache_control=_NO_CACHE,
        name="static",
    )
    return Router(path="/", route_handlers=[index, static], include_in_schema=False)


def openapi_config(
    title: str,
    version: str,
    components: Components | None = None,
    security: list[SecurityRequirement] | None = None,
    description: str | None = None,
) -> OpenAPIConfig:
    """OpenAPI schema at `/docs/openapi.json` and Swagger UI at `/docs`, loading its assets from `/static/`; the
    `components` and `security` of the contract (`app/api/contract.py`)."""
    swagger = SwaggerRenderPlugin(
        path="/",
        js_url=f"{SWAGGER_DIR}/swagger-ui-bundle.js",
        css_url=f"{SWAGGER_DIR}/swagger-ui.css",
        standalone_preset_js_url=f"{SWAGGER_DIR}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_DIR}/favicon-32x32.png'>",
    )
    return OpenAPIConfig(
        title=title,
        version=version,
        path="/docs",
        render_plugins=[swagger, JsonRenderPlugin(path="/openapi.json")],
        components=components or Components(),
        security=security,
        description=description,
    )
