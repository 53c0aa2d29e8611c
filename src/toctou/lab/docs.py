"""``/docs``: Swagger UI served from the lab itself, so the docs work offline.

FastAPI's own ``/docs`` page loads Swagger UI's script, stylesheet and favicon from a CDN; a lab
run on an isolated network (as it should be) showed a blank page. The ``swagger-ui-bundle``
package ships Swagger UI's files; they are served under ``/docs/assets``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

__all__ = ["ASSETS", "DOCS", "add_docs"]

DOCS = "/docs"
ASSETS = "/docs/assets"


def add_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` for ``app.openapi_url``, every asset from ``/docs/assets``."""
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title}: API docs"

    @app.get(DOCS, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )

    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
