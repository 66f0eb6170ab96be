"""RP-initiated logout as a hosted page: ``/oauth2/logout`` (GET and POST).

With an ``id_token_hint`` of the signed-in user the browser is signed out at once and sent
to the client's registered ``post_logout_redirect_uri`` (with ``state``); without one, or
with one we cannot read, the user confirms first (a form with our anti-forgery token, so
another site cannot sign anyone out by posting).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from auth_service.i18n import N_
from auth_service.oauth.end_session import LogoutRequest
from auth_service.oauth.errors import OAuthError
from auth_service.oauth.rfc8414 import END_SESSION
from auth_service.services import Services
from auth_service.ui.oauth import request_params, shown_error
from auth_service.ui.pages import (
    CSRF_FIELD,
    PAGE_HEADERS,
    Browser,
    BrowserDep,
    PageRoute,
    Pages,
    PagesDep,
)
from auth_service.web.deps import ServicesDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)

SIGNED_OUT_TITLE = N_("Signed out")
SIGNED_OUT = N_("You are signed out.")


@router.get(END_SESSION)
@router.post(END_SESSION)
async def end_session(
    request: Request, browser: BrowserDep, pages: PagesDep, services: ServicesDep
) -> Response:
    params = await request_params(request)
    try:
        confirmed = params.get("confirm") == "yes"
        logout = await services.oauth.end_session.request(params)
    except OAuthError as exc:
        return shown_error(browser, pages, exc)
    if logout.ui_locales:
        browser.language = pages.language(request, logout.ui_locales)
    if confirmed:
        pages.check_form(browser, params.get(CSRF_FIELD))
    elif logout.needs_confirmation(browser.session):
        fields = [("confirm", "yes"), *sorted(logout.params().items())]
        return pages.render(browser, "logout.html", action=END_SESSION, fields=fields)
    return await _signed_out(browser, pages, services, logout)


async def _signed_out(
    browser: Browser, pages: Pages, services: Services, logout: LogoutRequest
) -> Response:
    if browser.session is not None:
        await services.oauth.end_session.log_out(browser.session, browser.context)
        pages.sign_out(browser)
    target = logout.redirect_url()
    if target is not None:
        return pages.finish(
            browser, RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)
        )
    gettext = pages.gettext(browser)
    return pages.render(
        browser, "message.html", title=gettext(SIGNED_OUT_TITLE), body=gettext(SIGNED_OUT)
    )
