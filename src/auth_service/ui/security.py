"""The signed-in person's sign-in methods: ``/account/security``.

Authenticator app (set up with a QR code made here, confirmed by a first code), passkeys
(add, rename, remove), recovery codes (generate, shown once). Removing a factor or
regenerating codes needs a recent sign-in: an older session is sent to sign in again and
comes back here. Every change rotates the session cookie (a privilege change, ADR 0600).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from auth_service.mfa.deps import SessionAuth
from auth_service.mfa.errors import StepUpRequired
from auth_service.mfa.totp import TotpEnrolment
from auth_service.problems import ServiceError
from auth_service.services import Services
from auth_service.ui import messages
from auth_service.ui.pages import PAGE_HEADERS, Browser, BrowserDep, PageRoute, Pages, PagesDep
from auth_service.ui.signin import FormText
from auth_service.web.deps import ServicesDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PAGE = "/account/security"


async def _page(
    browser: Browser,
    pages: Pages,
    services: Services,
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
    errors: dict[str, list[str]] | None = None,
    enrolment: TotpEnrolment | None = None,
    codes: list[str] | None = None,
) -> Response:
    assert browser.session is not None
    user_id = browser.session.identity.id
    summary = await services.mfa.summary(user_id)
    return pages.render(
        browser,
        "security.html",
        status=status,
        summary=summary,
        passkeys=await services.mfa.passkeys.of_user(user_id),
        passkeys_enabled=services.settings.mfa.enabled and services.settings.mfa.passkeys,
        enrolment=enrolment,
        codes=codes or [],
        notice=notice,
        error=error,
        errors=errors or {},
    )


def _auth(browser: Browser) -> SessionAuth:
    assert browser.session is not None
    return SessionAuth(browser.session.acr, browser.session.auth_time)


async def _reauthenticate(browser: Browser, pages: Pages, services: Services) -> Response:
    """Too long since this browser signed in: sign in again, then back here."""
    flow = await services.signin.start_flow(
        binding=browser.binding,
        ttl_seconds=services.settings.ui.flow_ttl_seconds,
        state={"continue_to": PAGE, "force_login": True},
    )
    return pages.redirect(browser, "/login", flow=str(flow.id))


async def _changed(
    browser: Browser, pages: Pages, services: Services, notice: str, **extra: Any
) -> Response:
    """After a change of factors: a new session cookie, then the page."""
    assert browser.session is not None
    pages.sign_in(browser, await services.sessions.rotate_browser_session(browser.session.id))
    gettext = pages.gettext(browser)
    return await _page(browser, pages, services, notice=gettext(notice), **extra)


def _signed_out(browser: Browser, pages: Pages) -> Response:
    return pages.redirect(browser, "/login", return_to=PAGE)


@router.get(PAGE)
async def security(browser: BrowserDep, pages: PagesDep, services: ServicesDep) -> Response:
    if browser.session is None:
        return _signed_out(browser, pages)
    pending = await services.mfa.factors.pending_totp(browser.session.identity)
    return await _page(browser, pages, services, enrolment=pending)


@router.post(PAGE + "/totp")
async def set_up_totp(
    browser: BrowserDep, pages: PagesDep, services: ServicesDep, csrf_token: FormText = ""
) -> Response:
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    try:
        enrolment = await services.mfa.factors.begin_totp(browser.session.identity)
    except ServiceError as exc:
        return await _page(browser, pages, services, error=pages.error_text(browser, exc))
    return await _page(browser, pages, services, enrolment=enrolment)


@router.post(PAGE + "/totp/confirm")
async def confirm_totp(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    code: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    identity = browser.session.identity
    try:
        await services.mfa.factors.confirm_totp(identity, code, browser.context)
    except ServiceError as exc:
        pending = await services.mfa.factors.pending_totp(identity)
        errors = {"code": [pages.error_text(browser, exc)]}
        return await _page(browser, pages, services, status=400, errors=errors, enrolment=pending)
    return await _changed(browser, pages, services, messages.TOTP_ADDED)


@router.post(PAGE + "/totp/remove")
async def remove_totp(
    browser: BrowserDep, pages: PagesDep, services: ServicesDep, csrf_token: FormText = ""
) -> Response:
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    try:
        await services.mfa.factors.remove_totp(
            browser.session.identity, _auth(browser), browser.context
        )
    except StepUpRequired:
        return await _reauthenticate(browser, pages, services)
    except ServiceError as exc:
        return await _page(browser, pages, services, error=pages.error_text(browser, exc))
    return await _changed(browser, pages, services, messages.TOTP_REMOVED)


@router.post(PAGE + "/recovery-codes")
async def recovery_codes(
    browser: BrowserDep, pages: PagesDep, services: ServicesDep, csrf_token: FormText = ""
) -> Response:
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    try:
        codes = await services.mfa.factors.generate_recovery_codes(
            browser.session.identity, _auth(browser), browser.context
        )
    except StepUpRequired:
        return await _reauthenticate(browser, pages, services)
    return await _changed(browser, pages, services, messages.CODES_GENERATED, codes=codes)


@router.post(PAGE + "/passkeys/options")
async def passkey_options(
    browser: BrowserDep, pages: PagesDep, services: ServicesDep, csrf_token: FormText = ""
) -> Response:
    """JSON for the script: creation options and the token to post back with the result."""
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    options, token = await services.mfa.passkeys.registration_options(browser.session.identity)
    body = {"registration_token": token, "publicKey": options}
    return JSONResponse(body, headers=PAGE_HEADERS)


@router.post(PAGE + "/passkeys")
async def add_passkey(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    name: FormText = "",
    registration_token: FormText = "",
    credential: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    try:
        parsed = json.loads(credential) if 0 < len(credential) <= 16384 else None
        await services.mfa.passkeys.register(
            browser.session.identity, parsed, registration_token, name, browser.context
        )
    except (ServiceError, ValueError) as exc:
        text = pages.error_text(browser, exc) if isinstance(exc, ServiceError) else None
        gettext = pages.gettext(browser)
        errors = {"passkey_name": [text or gettext(messages.PASSKEY_FAILED)]}
        return await _page(browser, pages, services, status=400, errors=errors)
    return await _changed(browser, pages, services, messages.PASSKEY_ADDED)


@router.post(PAGE + "/passkeys/{passkey_id}/rename")
async def rename_passkey(
    passkey_id: uuid.UUID,
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    name: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    try:
        await services.mfa.passkeys.rename(
            browser.session.identity.id, passkey_id, name, browser.context
        )
    except ServiceError as exc:
        errors = {f"rename-{passkey_id}": [pages.error_text(browser, exc)]}
        return await _page(browser, pages, services, status=400, errors=errors)
    gettext = pages.gettext(browser)
    return await _page(browser, pages, services, notice=gettext(messages.PASSKEY_RENAMED))


@router.post(PAGE + "/passkeys/{passkey_id}/remove")
async def remove_passkey(
    passkey_id: uuid.UUID,
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    try:
        await services.mfa.passkeys.remove(
            browser.session.identity, passkey_id, _auth(browser), browser.context
        )
    except StepUpRequired:
        return await _reauthenticate(browser, pages, services)
    except ServiceError as exc:
        return await _page(browser, pages, services, error=pages.error_text(browser, exc))
    return await _changed(browser, pages, services, messages.PASSKEY_REMOVED)
