"""Recover a forgotten password: ``/forgot-password``, ``/reset-password``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from auth_service.accounts.errors import WeakPassword
from auth_service.problems import ServiceError
from auth_service.ui import messages
from auth_service.ui.pages import BrowserDep, PageRoute, PagesDep
from auth_service.ui.safety import has_control_characters
from auth_service.ui.signin import FormText
from auth_service.web.deps import ServicesDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/forgot-password")
async def forgot_page(browser: BrowserDep, pages: PagesDep) -> Response:
    return pages.render(browser, "forgot_password.html", email="", sent=False)


@router.post("/forgot-password")
async def forgot(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    email: FormText = "",
) -> Response:
    """The same answer for every email, known or not (the API's rule)."""
    pages.check_form(browser, csrf_token)
    try:
        if not has_control_characters(email):
            await services.accounts.recovery.forgot_password(email, browser.context)
    except ServiceError as exc:
        return pages.render(
            browser,
            "forgot_password.html",
            status=exc.problem.status,
            email="",
            sent=False,
            error=pages.error_text(browser, exc),
        )
    return pages.render(browser, "forgot_password.html", email="", sent=True)


@router.get("/reset-password")
async def reset_page(browser: BrowserDep, pages: PagesDep, token: str = "") -> Response:
    """The emailed link: the form only; the token is spent by the POST."""
    return pages.render(browser, "reset_password.html", token=token, errors={}, done=False)


@router.post("/reset-password")
async def reset(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    token: FormText = "",
    new_password: FormText = "",
) -> Response:
    """Set the new password; every session of the account is signed out."""
    pages.check_form(browser, csrf_token)
    try:
        if has_control_characters(token):
            raise messages.invalid_link()
        await services.accounts.recovery.reset_password(token, new_password, browser.context)
    except WeakPassword as exc:
        reasons = messages.password_reasons(exc, pages.gettext(browser))
        return pages.render(
            browser,
            "reset_password.html",
            status=422,
            token=token,
            errors={"new_password": reasons},
            done=False,
        )
    except ServiceError as exc:
        return pages.error_page(browser, exc)
    if browser.session is not None:  # its session was revoked with the others
        pages.sign_out(browser)
    return pages.render(browser, "reset_password.html", token="", errors={}, done=True)
