"""The device page (RFC 8628 section 3.3): ``/device`` asks for the code a device shows
(a field labelled **Code**, the button **Continue**; ``?user_code=`` prefills it, section
3.3.1), then the browser signs in (the sign-in engine's pages, second step included) and the
user answers on the consent page; the last page says the device is connected, or denied.

Between the steps the device authorization is parked as a flow bound to the browser's
anti-forgery cookie (which survives the sign-in), like a pending authorization request. A
wrong, expired or used code gets one message whatever the reason; entering codes counts
toward the ``ip.device_code`` and ``session.device_code`` limits (``oauth.device_entry``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response

from auth_service.flows.errors import FlowExpired
from auth_service.flows.store import Flow, FlowKind
from auth_service.i18n import N_
from auth_service.oauth.device_entry import DeviceRequest
from auth_service.oauth.rfc8628 import VERIFICATION
from auth_service.services import Services
from auth_service.ui.oauth import authenticated, authorization_binding
from auth_service.ui.pages import Browser, BrowserDep, PageRoute, Pages, PagesDep
from auth_service.ui.signin import FormText, flow_id_of
from auth_service.web.deps import ServicesDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)

CONTINUE = VERIFICATION + "/continue"
CONSENT = VERIFICATION + "/consent"
WRONG_CODE = N_("That code is not valid or has expired. Check the code on your device.")
CONNECTED = N_("Device connected")
CONNECTED_BODY = N_("Your device is now connected to your account. You can return to it.")
DENIED = N_("Request denied")
DENIED_BODY = N_("The device was not given access to your account.")
EXPIRED = N_("This request has expired")
EXPIRED_BODY = N_("Start again on your device to get a new code.")


def _code_form(browser: Browser, pages: Pages, code: str, *, error: str | None = None) -> Response:
    return pages.render(
        browser,
        "device.html",
        status=400 if error else 200,
        user_code=code[:32],
        error=pages.gettext(browser)(error) if error else None,
    )


def _done(browser: Browser, pages: Pages, title: str, body: str, outcome: str) -> Response:
    gettext = pages.gettext(browser)
    return pages.render(
        browser, "device_done.html", title=gettext(title), body=gettext(body), outcome=outcome
    )


@router.get(VERIFICATION)
async def device_page(browser: BrowserDep, pages: PagesDep, user_code: str = "") -> Response:
    """Section 3.3: where the user enters the code; ``verification_uri_complete`` fills it."""
    return _code_form(browser, pages, user_code)


@router.post(VERIFICATION)
async def enter_code(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    user_code: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    found = await services.oauth.device_entry.enter(
        user_code, browser.context, browser=browser.anti_forgery_cookie
    )
    if found is None:
        return _code_form(browser, pages, user_code, error=WRONG_CODE)
    flow = await services.flows.create(
        FlowKind.device_authorization,
        binding=authorization_binding(browser),
        tenant_id=found.device.tenant_id,
        ttl_seconds=pages.settings.ui.flow_ttl_seconds,
        state={"device": str(found.device.id)},
    )
    return pages.redirect(browser, CONTINUE, flow=str(flow.id))


async def _parked(
    browser: Browser, services: Services, flow: str | None
) -> tuple[Flow, DeviceRequest | None]:
    """The page flow and its device authorization (None: answered or expired meanwhile).
    Raises FlowExpired."""
    flow_id = flow_id_of(flow)
    if flow_id is None:
        raise FlowExpired
    parked = await services.flows.load(
        flow_id, FlowKind.device_authorization, binding=authorization_binding(browser)
    )
    device_id = flow_id_of(str(parked.state.get("device", "")))
    if device_id is None:
        raise FlowExpired
    return parked, await services.oauth.device_entry.resume(device_id)


@router.get(CONTINUE)
async def continue_page(
    browser: BrowserDep, pages: PagesDep, services: ServicesDep, flow: str | None = None
) -> Response:
    """After the code (and after the sign-in): sign in first, then the consent page."""
    try:
        parked, found = await _parked(browser, services, flow)
    except FlowExpired as exc:
        return pages.error_page(browser, exc)
    if found is None:
        return _done(browser, pages, EXPIRED, EXPIRED_BODY, "expired")
    if authenticated(browser) is None:
        sign_in = await services.signin.start_flow(
            binding=browser.binding,
            ttl_seconds=pages.settings.ui.flow_ttl_seconds,
            state={"continue_to": f"{CONTINUE}?flow={parked.id}", "force_login": False},
        )
        return pages.redirect(browser, "/login", flow=str(sign_in.id))
    gettext = pages.gettext(browser)
    scopes = services.oauth.authorize.scope_descriptions(found.device.scopes)
    return pages.render(
        browser,
        "consent.html",
        client_name=found.client.name,
        scopes=[(scope, gettext(text)) for scope, text in scopes],
        flow=str(parked.id),
        action=CONSENT,
    )


@router.post(CONSENT)
async def answer(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    flow: FormText = "",
    decision: Annotated[str, Form()] = "",
) -> Response:
    """The user's answer: the device gets its tokens at its next poll, or access_denied."""
    pages.check_form(browser, csrf_token)
    try:
        parked, found = await _parked(browser, services, flow)
    except FlowExpired as exc:
        return pages.error_page(browser, exc)
    session = authenticated(browser)
    if session is None or decision not in ("allow", "deny"):
        return pages.redirect(browser, CONTINUE, flow=str(parked.id))
    allow = decision == "allow"
    answered = found is not None and await services.oauth.device_entry.answer(
        found, session, allow=allow, ctx=browser.context
    )
    await services.flows.finish(parked)
    if not answered:
        return _done(browser, pages, EXPIRED, EXPIRED_BODY, "expired")
    if allow:
        return _done(browser, pages, CONNECTED, CONNECTED_BODY, "connected")
    return _done(browser, pages, DENIED, DENIED_BODY, "denied")
