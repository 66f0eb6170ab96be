"""Create an account and confirm its email: ``/register``, ``/verify-email``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from auth_service.accounts.errors import InvalidEmail, WeakPassword
from auth_service.problems import ServiceError
from auth_service.ui import messages
from auth_service.ui.pages import BrowserDep, PageRoute, PagesDep
from auth_service.ui.safety import has_control_characters
from auth_service.ui.signin import HOME, FormText
from auth_service.web.deps import ServicesDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)

MAX_NAME = 200


@router.get("/register")
async def register_page(browser: BrowserDep, pages: PagesDep) -> Response:
    if browser.session is not None:
        return pages.redirect(browser, HOME)
    return pages.render(browser, "register.html", email="", name="", errors={})


@router.post("/register")
async def register(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    email: FormText = "",
    password: FormText = "",
    name: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    gettext = pages.gettext(browser)
    errors: dict[str, list[str]] = {}
    clean_name = name.strip() or None
    if has_control_characters(email):
        errors["email"] = [gettext(messages.BY_SLUG["invalid-email"])]
    if clean_name is not None and (has_control_characters(name) or len(name) > MAX_NAME):
        errors["name"] = [gettext(messages.INVALID_NAME) % {"max": MAX_NAME}]
    if not errors:
        try:
            await services.accounts.registration.register(
                email, password, clean_name, browser.context, locale=browser.language
            )
        except InvalidEmail:
            errors["email"] = [gettext(messages.BY_SLUG["invalid-email"])]
        except WeakPassword as exc:
            errors["password"] = messages.password_reasons(exc, gettext)
        except ServiceError as exc:
            return pages.render(
                browser,
                "register.html",
                status=exc.problem.status,
                email="" if has_control_characters(email) else email,
                name=clean_name or "",
                errors={},
                error=pages.error_text(browser, exc),
            )
    if errors:
        return pages.render(
            browser,
            "register.html",
            status=422,
            email="" if "email" in errors else email,
            name="" if "name" in errors else (clean_name or ""),
            errors=errors,
        )
    return pages.render(browser, "check_email.html", email=email.strip())


@router.get("/verify-email")
async def verify_email_page(browser: BrowserDep, pages: PagesDep, token: str = "") -> Response:
    """The emailed link. GET only shows a button: mail scanners that prefetch links must not
    spend the token."""
    return pages.render(browser, "verify_email.html", token=token, done=False)


@router.post("/verify-email")
async def verify_email(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    token: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    try:
        if has_control_characters(token):
            raise messages.invalid_link()
        await services.accounts.verification.verify(token, browser.context)
    except ServiceError as exc:
        return pages.error_page(browser, exc)
    return pages.render(browser, "verify_email.html", token="", done=True)
