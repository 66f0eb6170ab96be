"""Swagger UI at ``/docs``, served from the installed package: no CDN, no inline script.

The files come from the pinned ``swagger-ui-bundle-v2`` package (byte for byte the
``swagger-ui-dist`` release of the same version, Apache-2.0, licence in its dist-info), so the
docs work on a network without internet and the docs CSP can be ``'self'`` only
(``security_headers`` in web/middleware.py). The page has no inline script: Swagger UI is started by
``init.js``, which reads the OpenAPI URL from the page.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

from auth_service.web.errors import NOT_FOUND, ApiProblem

DOCS_PATH: Final = "/docs"
SWAGGER_UI: Final = Path(swagger_ui_path)
# The version is in the asset URLs, so browsers may cache them for good.
VERSION: Final = SWAGGER_UI.name.removeprefix("swagger-ui-")
ASSETS_PATH: Final = f"{DOCS_PATH}/assets/{VERSION}"
_ASSETS: Final = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_IMMUTABLE: Final = "public, max-age=31536000, immutable"

_INIT_JS: Final = b"""\
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // The public validator is another origin: the CSP refuses it, and docs need no badge.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
"""

router = APIRouter(include_in_schema=False)


@cache
def _asset(name: str) -> bytes:
    return (SWAGGER_UI / name).read_bytes()


def _page(root: str, title: str) -> str:
    assets = html.escape(root + ASSETS_PATH)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{html.escape(root)}/openapi.json"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{html.escape(root + DOCS_PATH)}/init.js"></script>
</body>
</html>
"""


@router.get(DOCS_PATH)
async def docs_page(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return HTMLResponse(_page(root, f"{request.app.title} API"))


@router.get(f"{DOCS_PATH}/init.js")
async def docs_init() -> Response:
    return Response(_INIT_JS, media_type="text/javascript; charset=utf-8")


@router.get(ASSETS_PATH + "/{name}")
async def docs_asset(name: str) -> Response:
    media_type = _ASSETS.get(name)
    if media_type is None:  # only the listed files, never a path into the package
        raise ApiProblem(NOT_FOUND)
    return Response(_asset(name), media_type=media_type, headers={"Cache-Control": _IMMUTABLE})
