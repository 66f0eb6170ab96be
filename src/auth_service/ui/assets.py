"""What the pages load, all from our own origin: the stylesheet, the theme (the primary colour
from settings), the logo; the language switch; the error page."""

from __future__ import annotations

import mimetypes
from functools import cache
from importlib import resources

from fastapi import APIRouter, HTTPException, Response

from auth_service import i18n
from auth_service.ui import messages
from auth_service.ui.pages import PAGE_HEADERS, BrowserDep, PageRoute, PagesDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)

STATIC_FILES = frozenset({"auth.css", "logo.svg", "form_post.js", "webauthn.js"})
_ASSET_HEADERS = {
    "Cache-Control": "public, max-age=3600",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
}
MAX_LOGO_BYTES = 512 * 1024
# Not left to the platform's mime table: a script must be served as JavaScript everywhere
# (nosniff refuses it otherwise).
_MEDIA = {"js": "text/javascript"}


@cache
def _static(name: str) -> bytes:
    return resources.files("auth_service.ui").joinpath("static", name).read_bytes()


@router.get("/ui/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC_FILES:  # a fixed list: no path from the request reaches the disk
        raise HTTPException(404)
    media = _MEDIA.get(name.rpartition(".")[2]) or mimetypes.guess_type(name)[0]
    media = media or "application/octet-stream"
    return Response(_static(name), media_type=media, headers=_ASSET_HEADERS)


@router.get("/ui/theme.css")
async def theme(pages: PagesDep) -> Response:
    """The primary colour as a stylesheet: the CSP allows no inline style."""
    color = pages.settings.ui.primary_color  # validated as #rrggbb by the settings
    css = f":root {{ --primary: {color}; }}\n"
    return Response(css, media_type="text/css", headers=_ASSET_HEADERS)


@router.get("/ui/logo")
async def logo(pages: PagesDep) -> Response:
    path = pages.settings.ui.logo_file
    if path is None:
        return Response(_static("logo.svg"), media_type="image/svg+xml", headers=_ASSET_HEADERS)
    media = mimetypes.guess_type(path.name)[0]
    if media not in ("image/svg+xml", "image/png") or not path.is_file():
        raise HTTPException(404)
    if path.stat().st_size > MAX_LOGO_BYTES:
        raise HTTPException(404)
    headers = dict(_ASSET_HEADERS)
    if media == "image/svg+xml":  # an SVG opened directly must not run script
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return Response(path.read_bytes(), media_type=media, headers=headers)


@router.get("/ui/language")
async def switch_language(
    browser: BrowserDep, pages: PagesDep, lang: str = "", return_to: str = ""
) -> Response:
    """The language switch: remember the choice, then back to the page it came from."""
    if lang in i18n.languages():
        pages.set_language(browser, lang)
    return pages.redirect(browser, pages.return_to(return_to) or "/login")


@router.get("/error")
async def error_page(browser: BrowserDep, pages: PagesDep) -> Response:
    """A friendly error page with a reference id (the request id in our logs)."""
    gettext = pages.gettext(browser)
    return pages.render(
        browser,
        "error.html",
        status=400,
        message=gettext(messages.GENERIC),
        reference=browser.context.request_id or "",
    )


__all__ = ["PAGE_HEADERS", "router"]
