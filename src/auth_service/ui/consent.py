"""The consent page: ``/consent?flow=...`` lists the client and the scopes it asks for, in
words, with the buttons **Allow** and **Deny**. Allowing is remembered per user, client and
scopes (``oauth.consent``); either answer goes back to the client."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response

from auth_service.oauth import authorization
from auth_service.oauth.rfc8414 import AUTHORIZE_CONTINUE
from auth_service.ui.oauth import answer, authenticated, parked
from auth_service.ui.pages import BrowserDep, PageRoute, PagesDep
from auth_service.ui.signin import FormText
from auth_service.web.deps import ServicesDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/consent")
async def consent_page(
    browser: BrowserDep, pages: PagesDep, services: ServicesDep, flow: str | None = None
) -> Response:
    found = await parked(browser, pages, services, flow)
    if isinstance(found, Response):
        return found
    pending, auth_request, client = found
    if browser.session is None:
        return pages.redirect(browser, AUTHORIZE_CONTINUE, flow=str(pending.id))
    gettext = pages.gettext(browser)
    scopes = services.oauth.authorize.scope_descriptions(auth_request.scopes)
    return pages.render(
        browser,
        "consent.html",
        client_name=client.name,
        scopes=[(scope, gettext(text)) for scope, text in scopes],
        flow=str(pending.id),
    )


@router.post("/consent")
async def consent(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    flow: FormText = "",
    decision: Annotated[str, Form()] = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    found = await parked(browser, pages, services, flow)
    if isinstance(found, Response):
        return found
    pending, auth_request, client = found
    steps = services.oauth.authorize
    session = authenticated(browser)
    if session is None or authorization.login_needed(auth_request, session):
        return pages.redirect(browser, AUTHORIZE_CONTINUE, flow=str(pending.id))
    if decision == "allow":
        response = await steps.allow(auth_request, client, session, pending, browser.context)
    elif decision == "deny":
        response = await steps.deny(auth_request, pending)
    else:
        return pages.redirect(browser, "/consent", flow=str(pending.id))
    return answer(browser, pages, response)
