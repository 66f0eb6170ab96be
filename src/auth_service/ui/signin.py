"""Sign in and sign out: ``/login``, ``/logout``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Response

from auth_service.accounts.credentials import VerifiedLogin
from auth_service.accounts.errors import InvalidCredentials
from auth_service.flows.errors import FlowExpired
from auth_service.flows.store import Flow
from auth_service.problems import ServiceError
from auth_service.services import Services
from auth_service.ui.pages import Browser, BrowserDep, PageRoute, Pages, PagesDep
from auth_service.ui.safety import has_control_characters
from auth_service.web.deps import ServicesDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)

HOME = "/account"
FormText = Annotated[str, Form()]
# Statuses a failed sign-in page answers with (the problem's own when it is one of these).
_PAGE_STATUSES = frozenset({401, 403, 410, 429, 503})


def flow_id_of(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


@router.get("/login")
async def login_page(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    return_to: str | None = None,
    flow: str | None = None,
) -> Response:
    """The sign-in form. A signed-in browser goes on, unless its flow asks for a fresh
    sign-in (OAuth2 prompt=login or max_age, step-up, proving an account before linking)."""
    pending: Flow | None = None
    flow_id = flow_id_of(flow)
    if flow_id is not None:
        try:
            pending = await services.signin.flow(flow_id, binding=browser.binding)
        except FlowExpired as exc:
            return pages.error_page(browser, exc)
        _flow_language(browser, pages, pending)
    fresh_sign_in = bool(pending and pending.state.get("force_login"))
    if browser.session is not None and pending is not None and _wants_aal2(pending, browser):
        # A signed-in browser asked for more (OIDC acr_values): the second step, no password.
        step = await services.signin.step_up(browser.session, pending)
        if step is not None:
            return pages.redirect(browser, "/login/mfa", flow=str(pending.id))
        # No second factor to step up with: a fresh sign-in is the most it can reach.
        fresh_sign_in = True
    if browser.session is not None and not fresh_sign_in:
        return pages.redirect(browser, _next(pages, pending, return_to))
    hint = pending.state.get("login_hint") if pending else None
    return await _form(
        browser, pages, services, email=str(hint or ""), return_to=return_to, flow=pending
    )


@router.post("/login")
async def login(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    email: FormText = "",
    password: FormText = "",
    return_to: FormText = "",
    flow: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    pending: Flow | None = None
    try:
        flow_id = flow_id_of(flow)
        if flow_id is not None:
            pending = await services.signin.flow(flow_id, binding=browser.binding)
            _flow_language(browser, pages, pending)
        if has_control_characters(email) or has_control_characters(password):
            raise InvalidCredentials  # no account has such an email or password
        verified = await services.signin.password(email, password, browser.context)
        return await finish_sign_in(browser, pages, services, verified, pending, return_to)
    except ServiceError as exc:
        status = exc.problem.status if exc.problem.status in _PAGE_STATUSES else 400
        return await _form(
            browser,
            pages,
            services,
            email="" if has_control_characters(email) else email,
            return_to=return_to,
            flow=pending,
            error=pages.error_text(browser, exc),
            status=status,
        )


async def finish_sign_in(
    browser: Browser,
    pages: Pages,
    services: Services,
    verified: VerifiedLogin,
    pending: Flow | None,
    return_to: str,
) -> Response:
    """After the first step (a password, an upstream identity provider): the second step
    when the policy asks for one, else a new browser session, then where the sign-in was
    going (a pending OAuth2 authorization, a same-origin return_to, the account page)."""
    step = await services.signin.second_step_due(
        verified,
        binding=browser.binding,
        pending=pending,
        state={"return_to": pages.return_to(return_to) or ""},
    )
    if step is not None:
        return pages.redirect(browser, "/login/mfa", flow=str(step.flow.id))
    signed_in = await services.signin.browser_session(
        verified, browser.context, replacing=browser.session
    )
    if pending is not None:
        await services.signin.complete_flow(pending, verified.identity.id)
    pages.sign_in(browser, signed_in.cookie)
    return pages.redirect(browser, _next(pages, pending, return_to))


def _flow_language(browser: Browser, pages: Pages, pending: Flow) -> None:
    """The language an OAuth2 client asked for (``ui_locales``) comes first."""
    asked = pending.state.get("ui_locales")
    if asked:
        browser.language = pages.language(browser.request, str(asked))


def _wants_aal2(pending: Flow, browser: Browser) -> bool:
    """The flow asks for aal2 (``require_acr``) and this browser's session has less."""
    session = browser.session
    return (
        pending.state.get("require_acr") == "aal2" and session is not None and session.acr != "aal2"
    )


def _next(pages: Pages, pending: Flow | None, return_to: str | None) -> str:
    """Where a signed-in browser goes: the flow's continuation, a same-origin return_to, or
    the account page."""
    if pending is not None and pending.state.get("continue_to"):
        return str(pending.state["continue_to"])
    return pages.return_to(return_to) or HOME


async def _form(
    browser: Browser,
    pages: Pages,
    services: Services,
    *,
    email: str,
    return_to: str | None,
    flow: Flow | None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return pages.render(
        browser,
        "login.html",
        status=status,
        error=error,
        email=email,
        return_to=pages.return_to(return_to) or "",
        flow=str(flow.id) if flow else "",
        connectors=await services.federation.connectors.list(enabled_only=True),
    )


@router.get("/logout")
async def logout_page(browser: BrowserDep, pages: PagesDep) -> Response:
    """Signing out changes state, so it is a POST; this page asks to confirm."""
    if browser.session is None:
        return pages.redirect(browser, "/login")
    return pages.render(browser, "logout.html")


@router.post("/logout")
async def logout(
    browser: BrowserDep, pages: PagesDep, services: ServicesDep, csrf_token: FormText = ""
) -> Response:
    pages.check_form(browser, csrf_token)
    if browser.session is not None:
        await services.sessions.end_browser_session(browser.session, browser.context)
    pages.sign_out(browser)
    return pages.redirect(browser, "/login")
