"""The second step of a sign-in, and signing in with a passkey: ``/login/mfa``,
``/login/passkey``.

Thin: the flow engine (``flows.signin``) decides; these handlers render its pending step and
post the factor. The passkey prompt is the one script of the pages (``static/webauthn.js``):
options travel in a ``data-`` attribute or from a JSON answer to the same form's post.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from auth_service.flows.errors import FlowExpired
from auth_service.flows.signin import STEP_ENROL
from auth_service.flows.store import Flow
from auth_service.mfa.errors import InvalidFactor
from auth_service.mfa.policy import Factor
from auth_service.problems import ServiceError
from auth_service.ui.pages import PAGE_HEADERS, Browser, BrowserDep, PageRoute, Pages, PagesDep
from auth_service.ui.signin import HOME, FormText, flow_id_of
from auth_service.web.deps import ServicesDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)

METHODS = ("code", "recovery", "passkey")
MAX_CREDENTIAL = 16 * 1024


def next_page(pages: Pages, flow: Flow) -> str:
    """Where a browser goes once signed in: the flow's continuation (a pending OAuth2
    authorization), its same-origin return_to, or the account page."""
    if flow.state.get("continue_to"):
        return str(flow.state["continue_to"])
    return pages.return_to(flow.state.get("return_to")) or HOME


async def _step(
    browser: Browser,
    pages: Pages,
    services: ServicesDep,
    flow: Flow,
    method: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    enrol = flow.state.get("step") == STEP_ENROL
    context: dict[str, Any] = {"flow": str(flow.id), "method": method, "enrol": enrol}
    summary = await services.mfa.summary(flow.user_id) if flow.user_id else None
    context["has_totp"] = bool(summary and summary.totp)
    context["has_passkeys"] = bool(summary and summary.passkeys) and services.settings.mfa.passkeys
    context["has_recovery"] = bool(summary and summary.recovery_codes_left)
    if method == "code" and not context["has_totp"] and context["has_passkeys"]:
        method = context["method"] = "passkey"
    context["options"] = ""
    context["enrolment"] = None
    if enrol and flow.user_id is not None:
        identity = await services.accounts.identities.identity(flow.user_id)
        if identity is not None:
            factors = services.mfa.factors
            context["enrolment"] = await factors.pending_totp(identity) or (
                await factors.begin_totp(identity)
            )
    elif method == "passkey" and context["has_passkeys"]:
        context["options"] = json.dumps(await services.signin.passkey_challenge(flow))
    return pages.render(browser, "login_mfa.html", status=status, error=error, **context)


@router.get("/login/mfa")
async def second_step_page(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    flow: str | None = None,
    method: str = "code",
) -> Response:
    flow_id = flow_id_of(flow)
    if flow_id is None:
        return pages.error_page(browser, FlowExpired())
    pending, _ = await services.signin.pending_step(flow_id, binding=browser.binding)
    return await _step(browser, pages, services, pending, method if method in METHODS else "code")


@router.post("/login/mfa")
async def second_step(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    flow: FormText = "",
    method: FormText = "code",
    code: FormText = "",
    recovery_code: FormText = "",
    credential: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    flow_id = flow_id_of(flow)
    if flow_id is None:
        return pages.error_page(browser, FlowExpired())
    pending, identity = await services.signin.pending_step(flow_id, binding=browser.binding)
    method = method if method in METHODS else "code"
    factor = {"code": Factor.totp, "recovery": Factor.recovery_code}.get(method, Factor.webauthn)
    try:
        verified = await services.signin.finish_second_step(
            pending,
            identity,
            browser.context,
            factor=factor,
            code=recovery_code if factor is Factor.recovery_code else code,
            credential=_credential(credential) if factor is Factor.webauthn else None,
        )
    except FlowExpired as exc:
        return pages.error_page(browser, exc)
    except ServiceError as exc:
        status = 400 if exc.problem.status == 401 else exc.problem.status
        try:
            pending, _ = await services.signin.pending_step(flow_id, binding=browser.binding)
        except FlowExpired as expired:  # too many wrong codes: the flow ended
            return pages.error_page(browser, expired)
        error = pages.error_text(browser, exc)
        return await _step(browser, pages, services, pending, method, error=error, status=status)
    signed_in = await services.signin.browser_session(
        verified, browser.context, replacing=browser.session
    )
    pages.sign_in(browser, signed_in.cookie)
    return pages.redirect(browser, next_page(pages, pending))


def _credential(raw: str) -> Any:
    """The JSON the script posted; anything else is an invalid factor, not an error page."""
    if not raw or len(raw) > MAX_CREDENTIAL:
        raise InvalidFactor
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidFactor from None


@router.post("/login/passkey/options")
async def passkey_options(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    flow: FormText = "",
    return_to: FormText = "",
) -> Response:
    """JSON for the script: a new passkey sign-in flow of this browser and its options. A
    pending OAuth2 sign-in flow's continuation carries over."""
    pages.check_form(browser, csrf_token)
    state: dict[str, Any] = {"return_to": pages.return_to(return_to) or ""}
    flow_id = flow_id_of(flow)
    if flow_id is not None:
        pending = await services.signin.flow(flow_id, binding=browser.binding)
        state.update({k: v for k, v in pending.state.items() if k == "continue_to"})
    started, options = await services.signin.start_passkey(
        browser.context, binding=browser.binding, state=state
    )
    return JSONResponse({"flow": str(started.id), "publicKey": options}, headers=PAGE_HEADERS)


@router.post("/login/passkey")
async def passkey_sign_in(
    browser: BrowserDep,
    pages: PagesDep,
    services: ServicesDep,
    csrf_token: FormText = "",
    flow: FormText = "",
    credential: FormText = "",
) -> Response:
    pages.check_form(browser, csrf_token)
    flow_id = flow_id_of(flow) or uuid.UUID(int=0)
    try:
        done, verified = await services.signin.finish_passkey(
            flow_id, _credential(credential), browser.context, binding=browser.binding
        )
    except ServiceError as exc:
        status = 400 if exc.problem.status in (401, 410) else exc.problem.status
        return pages.render(
            browser,
            "login.html",
            status=status,
            error=pages.error_text(browser, exc),
            email="",
            return_to="",
            flow="",
        )
    signed_in = await services.signin.browser_session(
        verified, browser.context, replacing=browser.session
    )
    pages.sign_in(browser, signed_in.cookie)
    return pages.redirect(browser, next_page(pages, done))
