"""Signing in with another identity provider: ``/login/federated/{id}`` (the button
"Continue with <name>" posts here) and its callback; unlinking on the account page.

Thin: ``federation.service`` does the protocol and picks the account; the end of a sign-in
(second step, session, the pending OAuth2 authorization) is the password sign-in's own
(``signin.finish_sign_in``). Every failure ends on a page that says what happened, with the
reference id of the request (its audit event carries the same request id).
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse

from auth_service.federation.errors import EmailCollision, FederationError
from auth_service.federation.service import Continuation
from auth_service.flows.errors import FlowExpired
from auth_service.flows.store import Flow
from auth_service.i18n import N_
from auth_service.problems import ServiceError
from auth_service.ui import messages
from auth_service.ui.account import account_page
from auth_service.ui.pages import PAGE_HEADERS, Browser, BrowserDep, PageRoute, Pages, PagesDep
from auth_service.ui.signin import FormText, finish_sign_in, flow_id_of
from auth_service.web.deps import ServicesDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)

TITLE = N_("Signing in did not work")
COLLISION_TITLE = N_("Sign in with your password first")
# Only these query parameters of a callback are read (RFC 6749 section 4.1.2 and 4.1.2.1).
_CALLBACK_PARAMS = ("code", "state", "error", "error_description", "iss")


def failure_page(browser: Browser, pages: Pages, exc: ServiceError) -> Response:
    gettext = pages.gettext(browser)
    collision = isinstance(exc, EmailCollision)
    return pages.render(
        browser,
        "federation_error.html",
        status=exc.problem.status,
        title=gettext(COLLISION_TITLE if collision else TITLE),
        message=pages.error_text(browser, exc),
        reference=browser.context.request_id or "",
        prove_account=collision,
    )


@router.post("/login/federated/{connector_id}")
async def begin(
    connector_id: str,
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    flow: FormText = "",
    return_to: FormText = "",
) -> Response:
    """Off to the provider, with a flow of this browser holding state, nonce and verifier."""
    pages.check_form(browser, csrf_token)
    pending = flow_id_of(flow)
    try:
        if pending is not None:
            await services.signin.flow(pending, binding=browser.binding)  # still live, ours
        url = await services.federation.begin(
            connector_id,
            binding=browser.binding,
            continuation=Continuation(pending, pages.return_to(return_to) or ""),
            ctx=browser.context,
        )
    except (FederationError, FlowExpired) as exc:
        return failure_page(browser, pages, exc)
    # The provider's authorization endpoint: the one redirect to another origin we make.
    return pages.finish(browser, RedirectResponse(url, status_code=303, headers=PAGE_HEADERS))


@router.get("/login/federated/{connector_id}/callback")
async def callback(
    connector_id: str, browser: BrowserDep, pages: PagesDep, services: ServicesDep
) -> Response:
    query = browser.request.query_params
    params = {k: query[k][:4096] for k in _CALLBACK_PARAMS if k in query}
    try:
        done = await services.federation.finish(
            connector_id, params, binding=browser.binding, ctx=browser.context
        )
        if done.verified is None:  # linked from the account page: the list shows it
            return pages.redirect(browser, "/account")
        pending: Flow | None = None
        if done.continuation.pending_flow is not None:
            pending = await services.signin.flow(
                done.continuation.pending_flow, binding=browser.binding
            )
        return await finish_sign_in(
            browser, pages, services, done.verified, pending, done.continuation.return_to
        )
    except ServiceError as exc:
        return failure_page(browser, pages, exc)


@router.post("/account/linked/{connector_id}/link")
async def link(
    connector_id: str,
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
) -> Response:
    """A signed-in user (who proved the account) links another provider: the same trip,
    bound to this session, ending in a link instead of a sign-in."""
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return pages.redirect(browser, "/login", return_to="/account")
    try:
        url = await services.federation.begin(
            connector_id,
            binding=browser.binding,
            continuation=Continuation(None, "/account"),
            ctx=browser.context,
            link_user=browser.session.identity.id,
        )
    except FederationError as exc:
        return failure_page(browser, pages, exc)
    return pages.finish(browser, RedirectResponse(url, status_code=303, headers=PAGE_HEADERS))


@router.post("/account/linked/{link_id}/unlink")
async def unlink(
    link_id: str,
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    if browser.session is None:
        return pages.redirect(browser, "/login")
    try:
        parsed = uuid.UUID(link_id)
        await services.federation.unlink(browser.session.identity.id, parsed, browser.context)
    except ValueError:
        return await account_page(
            browser, pages, services, status=404, error=pages.gettext(browser)(messages.GENERIC)
        )
    except ServiceError as exc:
        error = pages.error_text(browser, exc)
        return await account_page(browser, pages, services, status=exc.problem.status, error=error)
    notice = pages.gettext(browser)(messages.IDENTITY_UNLINKED)
    return await account_page(browser, pages, services, notice=notice)
