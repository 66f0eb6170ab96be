"""The authorization endpoint as a hosted page: ``/oauth2/authorize`` (GET and POST) and
``/oauth2/authorize/continue``, where the browser comes back after signing in.

The protocol decisions are the oauth domain's (``oauth.authorize``); this module moves the
browser: to ``/login?flow=...`` (a sign-in flow whose ``continue_to`` is the continue URL),
to ``/consent?flow=...``, or back to the client with the code or the error. Errors about the
client or its redirect URI are shown here and never redirected (RFC 6749 section 4.1.2.1).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from auth_service.flows.errors import FlowExpired
from auth_service.flows.store import Flow
from auth_service.i18n import N_
from auth_service.oauth.authorization import (
    Authenticated,
    AuthorizationFailed,
    AuthorizationRequest,
    step_up_only,
)
from auth_service.oauth.authorize_steps import AuthorizationResponse, Step
from auth_service.oauth.clients import Client
from auth_service.oauth.errors import InvalidRequest, OAuthError
from auth_service.oauth.request import Params
from auth_service.oauth.rfc8414 import AUTHORIZE, AUTHORIZE_CONTINUE
from auth_service.services import Services
from auth_service.ui.pages import PAGE_HEADERS, Browser, BrowserDep, PageRoute, Pages, PagesDep
from auth_service.ui.signin import flow_id_of
from auth_service.web.deps import ServicesDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)

FORM = "application/x-www-form-urlencoded"
AUTHORIZATION_FAILED = N_(
    "This sign-in request cannot be completed. The app that sent you here may be misconfigured."
)


def authorization_binding(browser: Browser) -> str:
    """A pending authorization is bound to the browser's anti-forgery cookie: unlike its
    session cookie, it survives the sign-in the authorization waits for."""
    return "a:" + browser.anti_forgery_cookie


def authenticated(browser: Browser) -> Authenticated | None:
    session = browser.session
    if session is None:
        return None
    return Authenticated(
        session.id, session.identity.id, session.auth_time, session.acr, session.amr
    )


async def request_params(request: Request) -> Params:
    """Query parameters (GET) or the form body (POST, section 3.1 allows both)."""
    if request.method == "POST":
        media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if media != FORM:
            return Params.of(())
        form = await request.form()
        return Params.of((k, v) for k, v in form.multi_items() if isinstance(v, str))
    return Params.of(request.query_params.multi_items())


def answer(browser: Browser, pages: Pages, response: AuthorizationResponse) -> Response:
    """Back to the client: a 303 with the parameters in the query, or the form post page."""
    if response.form_post:
        return pages.render(
            browser,
            "form_post.html",
            action=response.target.redirect_uri,
            fields=sorted(response.params.items()),
        )
    return pages.finish(
        browser, RedirectResponse(response.url(), status_code=303, headers=PAGE_HEADERS)
    )


def failed(
    browser: Browser, pages: Pages, services: Services, exc: AuthorizationFailed
) -> Response:
    response = services.oauth.authorize.error_response(exc)
    if response is not None:
        return answer(browser, pages, response)
    return shown_error(browser, pages, exc.error)


def shown_error(browser: Browser, pages: Pages, error: OAuthError) -> Response:
    """An error we may not send to the client: shown, with the technical reason for the
    developer of the client."""
    return pages.render(
        browser,
        "authorize_error.html",
        status=400,
        message=pages.gettext(browser)(AUTHORIZATION_FAILED),
        error=error.error,
        description=error.description,
        reference=browser.context.request_id or "",
    )


async def proceed(
    browser: Browser,
    pages: Pages,
    services: Services,
    request: AuthorizationRequest,
    client: Client,
    flow: Flow | None,
) -> Response:
    """The next step of a (possibly parked) request. Raises AuthorizationFailed."""
    steps = services.oauth.authorize
    session = authenticated(browser)
    step = await steps.next_step(request, client, session)
    if step is Step.issue:
        assert session is not None
        return answer(browser, pages, await steps.issue(request, client, session, flow))
    flow_id = (
        flow.id
        if flow
        else await steps.park(request, client, binding=authorization_binding(browser))
    )
    if step is Step.consent:
        return pages.redirect(browser, "/consent", flow=str(flow_id))
    sign_in = await services.signin.start_flow(
        binding=browser.binding,
        ttl_seconds=pages.settings.ui.flow_ttl_seconds,
        state={
            "continue_to": f"{AUTHORIZE_CONTINUE}?flow={flow_id}",
            # acr_values beyond the session's: only the second step; else a whole sign-in.
            "force_login": session is not None and not step_up_only(request, session),
            "require_acr": "aal2" if step_up_only(request, session) else None,
            "login_hint": request.login_hint,
            "ui_locales": request.ui_locales,
        },
    )
    return pages.redirect(browser, "/login", flow=str(sign_in.id))


@router.get(AUTHORIZE)
@router.post(AUTHORIZE)
async def authorize(
    request: Request, browser: BrowserDep, pages: PagesDep, services: ServicesDep
) -> Response:
    """The authorization endpoint (RFC 6749 section 3.1, OIDC Core 3.1.2)."""
    params = await request_params(request)
    if request.method == "POST" and not params.items:
        return shown_error(browser, pages, InvalidRequest(f"POST the parameters as {FORM}"))
    ui_locales = _quiet(params, "ui_locales")
    if ui_locales:
        browser.language = pages.language(request, ui_locales)
    try:
        auth_request, client = await services.oauth.authorize.validate(params)
        return await proceed(browser, pages, services, auth_request, client, None)
    except AuthorizationFailed as exc:
        return failed(browser, pages, services, exc)


Parked = tuple[Flow, AuthorizationRequest, Client]


async def parked(
    browser: Browser, pages: Pages, services: Services, flow: str | None
) -> Parked | Response:
    """The parked request named by ``flow`` (in the page's language), or the page to show
    instead: expired (or another browser's), or its client is gone."""
    flow_id = flow_id_of(flow)
    try:
        if flow_id is None:
            raise FlowExpired
        found = await services.oauth.authorize.resume(
            flow_id, binding=authorization_binding(browser)
        )
    except FlowExpired as exc:
        return pages.error_page(browser, exc)
    except AuthorizationFailed as exc:
        return failed(browser, pages, services, exc)
    if found[1].ui_locales:
        browser.language = pages.language(browser.request, found[1].ui_locales)
    return found


@router.get(AUTHORIZE_CONTINUE)
async def resume(
    browser: BrowserDep, pages: PagesDep, services: ServicesDep, flow: str | None = None
) -> Response:
    """Where the sign-in sends the browser back: the parked request goes on."""
    found = await parked(browser, pages, services, flow)
    if isinstance(found, Response):
        return found
    pending, auth_request, client = found
    try:
        return await proceed(browser, pages, services, auth_request, client, pending)
    except AuthorizationFailed as exc:
        return failed(browser, pages, services, exc)


def _quiet(params: Params, name: str) -> str | None:
    try:
        return params.get(name)
    except OAuthError:
        return None  # reported by validation
