"""The signed-in person's page: ``/account`` (profile, password, sessions, deletion)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from fastapi import APIRouter, Response

from auth_service.accounts.errors import WeakPassword
from auth_service.problems import ServiceError
from auth_service.services import Services
from auth_service.ui import devices, messages
from auth_service.ui.pages import Browser, BrowserDep, PageRoute, Pages, PagesDep
from auth_service.ui.registration import MAX_NAME
from auth_service.ui.safety import has_control_characters
from auth_service.ui.signin import FormText
from auth_service.web.deps import ServicesDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)


async def account_page(
    browser: Browser,
    pages: Pages,
    services: Services,
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
    errors: dict[str, list[str]] | None = None,
) -> Response:
    assert browser.session is not None
    identity = browser.session.identity
    sessions = await services.sessions.list_sessions(identity.id)
    gettext = pages.gettext(browser)
    describe = services.oauth.authorize.scope_descriptions
    apps = [
        (app, [gettext(text) for _scope, text in describe(app.scopes)])
        for app in await services.oauth.consents.connected_apps(identity.id)
    ]
    links = await services.federation.links(identity.id)
    linked = {link.connector_id for link in links}
    enabled = await services.federation.connectors.list(enabled_only=True)
    linkable = [c for c in enabled if c.id not in linked]
    return pages.render(
        browser,
        "account.html",
        status=status,
        links=links,
        linkable=linkable,
        user=identity,
        sessions=sessions,
        apps=apps,
        current_session=browser.session.id,
        device=devices.describe,
        deletion_due=deletion_date(identity.deletion_due_at) if identity.deletion_due_at else None,
        grace_days=services.deletion.settings.accounts.deletion_grace_days,
        notice=notice,
        error=error,
        errors=errors or {},
    )


def _signed_out(browser: Browser, pages: Pages) -> Response:
    return pages.redirect(browser, "/login", return_to=browser.request.url.path)


@router.get("/account")
async def account(browser: BrowserDep, pages: PagesDep, services: ServicesDep) -> Response:
    if browser.session is None:
        return _signed_out(browser, pages)
    return await account_page(browser, pages, services)


@router.post("/account/profile")
async def update_profile(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    name: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    gettext = pages.gettext(browser)
    clean = name.strip() or None
    if clean is not None and (has_control_characters(name) or len(name) > MAX_NAME):
        errors = {"name": [gettext(messages.INVALID_NAME) % {"max": MAX_NAME}]}
        return await account_page(browser, pages, services, status=422, errors=errors)
    identity = await services.accounts.users.update_profile(browser.session.identity.id, clean)
    browser.session = replace(browser.session, identity=identity)
    return await account_page(browser, pages, services, notice=gettext(messages.PROFILE_SAVED))


@router.post("/account/password")
async def change_password(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    current_password: FormText = "",
    new_password: FormText = "",
) -> Response:
    """Other sessions are signed out; this browser gets a new session cookie (a privilege
    change rotates the session id)."""
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    gettext = pages.gettext(browser)
    session = browser.session
    try:
        await services.accounts.credentials.change_password(
            session.identity.id, session.id, current_password, new_password, browser.context
        )
    except WeakPassword as exc:
        errors = {"new_password": messages.password_reasons(exc, gettext)}
        return await account_page(browser, pages, services, status=422, errors=errors)
    except ServiceError as exc:
        status = exc.problem.status if exc.problem.status != 401 else 400
        errors = {"current_password": [pages.error_text(browser, exc)]}
        return await account_page(browser, pages, services, status=status, errors=errors)
    pages.sign_in(browser, await services.sessions.rotate_browser_session(session.id))
    return await account_page(browser, pages, services, notice=gettext(messages.PASSWORD_CHANGED))


@router.post("/account/sessions/{session_id}/revoke")
async def revoke_session(
    session_id: uuid.UUID,
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    try:
        await services.sessions.revoke_session(
            browser.session.identity.id, session_id, browser.context
        )
    except ServiceError as exc:
        return await account_page(browser, pages, services, error=pages.error_text(browser, exc))
    if session_id == browser.session.id:
        pages.sign_out(browser)
        return pages.redirect(browser, "/login")
    gettext = pages.gettext(browser)
    return await account_page(browser, pages, services, notice=gettext(messages.SESSION_ENDED))


@router.post("/account/apps/{client_id}/remove")
async def remove_app(
    client_id: str,
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
) -> Response:
    """Withdraw consent from a connected app: it must ask again, and its tokens end."""
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    await services.oauth.consents.revoke(browser.session.identity.id, client_id, browser.context)
    gettext = pages.gettext(browser)
    return await account_page(browser, pages, services, notice=gettext(messages.APP_REMOVED))


def deletion_date(due: datetime) -> str:
    """How the page and the email name the day of erasure (UTC: the service's clock)."""
    return due.strftime("%Y-%m-%d %H:%M UTC")


@router.post("/account/delete")
async def delete_account(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    password: FormText = "",
) -> Response:
    """Schedule the deletion after the grace period, as ``DELETE /v1/users/me`` does (ADR
    0911, 0936): every other session ends, this one stays to see and cancel it, and the
    owner is mailed."""
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    session = browser.session
    try:
        due = await services.deletion.request(
            session.identity.id, password, browser.context, keep_session=session.id
        )
    except ServiceError as exc:
        status = exc.problem.status if exc.problem.status != 401 else 400
        errors = {"delete_password": [pages.error_text(browser, exc)]}
        return await account_page(browser, pages, services, status=status, errors=errors)
    browser.session = replace(session, identity=replace(session.identity, deletion_due_at=due))
    gettext = pages.gettext(browser)
    notice = gettext(messages.DELETION_SCHEDULED) % {"date": deletion_date(due)}
    return await account_page(browser, pages, services, notice=notice)


@router.post("/account/delete/cancel")
async def cancel_deletion(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return _signed_out(browser, pages)
    session = browser.session
    await services.deletion.cancel(session.identity.id, browser.context)
    browser.session = replace(session, identity=replace(session.identity, deletion_due_at=None))
    gettext = pages.gettext(browser)
    return await account_page(browser, pages, services, notice=gettext(messages.DELETION_CANCELLED))
