"""HTTP routes of the sign-in's later steps: the second factor, forced enrolment, passkeys.

``POST /v1/auth/login`` (sessions) answers ``401 mfa-required`` with a ``flow_id`` when a
second step is due; these routes finish it. A flow id is ``<uuid>.<secret>``: the flow is
bound to the secret, which only the client that signed in with the password holds.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from auth_service.flows.errors import FlowExpired
from auth_service.flows.schemas import FlowRequest, PasskeyVerifyRequest, SecondFactorRequest
from auth_service.flows.signin import API_BINDING, STEP_ENROL, api_flow_ref
from auth_service.mfa.policy import Factor
from auth_service.mfa.schemas import TotpEnrolmentOut
from auth_service.security.random import new_token
from auth_service.sessions.schemas import TokenResponse
from auth_service.web.deps import ContextDep, ServicesDep
from auth_service.web.dpop import signin_key
from auth_service.web.openapi import problem_responses

router = APIRouter(prefix="/v1/auth", tags=["auth"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post(
    "/login/mfa",
    response_model=TokenResponse,
    responses=problem_responses(400, 401, 403, 410, 422, 429),
)
async def second_factor(
    body: SecondFactorRequest, request: Request, services: ServicesDep, ctx: ContextDep
) -> JSONResponse:
    """Finish a sign-in with a TOTP code, a recovery code or a passkey assertion.

    A wrong factor answers 401 ``invalid-factor`` and counts toward the flow's attempts and
    the account's lockout; the flow works once and expires (410 ``flow-expired``). With a
    ``DPoP`` proof of this request the tokens are bound to its key (RFC 9449)."""
    dpop_jkt = await signin_key(request, services)
    flow_id, binding = api_flow_ref(body.flow_id)
    flow, identity = await services.signin.pending_step(flow_id, binding=binding)
    if body.totp_code is not None:
        factor, code = Factor.totp, body.totp_code
    elif body.recovery_code is not None:
        factor, code = Factor.recovery_code, body.recovery_code
    else:
        factor, code = Factor.webauthn, ""
    verified = await services.signin.finish_second_step(
        flow, identity, ctx, factor=factor, code=code, credential=body.webauthn
    )
    pair = await services.sessions.open_api_session(verified, ctx, dpop_jkt=dpop_jkt)
    return JSONResponse(TokenResponse.of(pair).model_dump(mode="json"), headers=_NO_STORE)


@router.post(
    "/login/enrol",
    response_model=TotpEnrolmentOut,
    responses=problem_responses(409, 410, 422),
)
async def enrol_during_sign_in(
    body: FlowRequest, services: ServicesDep, ctx: ContextDep
) -> JSONResponse:
    """When ``mfa-required`` says ``enrolment_required``: an authenticator app to set up; its
    first code (``totp_code`` at ``/v1/auth/login/mfa``) confirms it and finishes the sign-in."""
    flow_id, binding = api_flow_ref(body.flow_id)
    flow, identity = await services.signin.pending_step(flow_id, binding=binding)
    if flow.state.get("step") != STEP_ENROL:
        raise FlowExpired
    pending = await services.mfa.factors.pending_totp(identity)
    found = pending or await services.mfa.factors.begin_totp(identity)
    out = TotpEnrolmentOut(secret=found.secret, otpauth_uri=found.uri, qr_svg=found.qr_svg)
    return JSONResponse(out.model_dump(), headers=_NO_STORE)


@router.post("/passkey/options", responses=problem_responses(403, 429))
async def passkey_options(services: ServicesDep, ctx: ContextDep) -> JSONResponse:
    """Start a passwordless, usernameless sign-in: options for
    ``navigator.credentials.get()`` (any discoverable credential, user verification
    required) and the flow id to send back with the assertion."""
    secret = new_token()
    flow, options = await services.signin.start_passkey(ctx, binding=API_BINDING + secret)
    body = {
        "flow_id": f"{flow.id}.{secret}",
        "expires_in": services.settings.mfa.flow_ttl_seconds,
        "publicKey": options,
    }
    return JSONResponse(body, headers=_NO_STORE)


@router.post(
    "/passkey/verify",
    response_model=TokenResponse,
    responses=problem_responses(400, 401, 403, 410, 422, 429),
)
async def passkey_verify(
    body: PasskeyVerifyRequest, request: Request, services: ServicesDep, ctx: ContextDep
) -> JSONResponse:
    """Finish a passkey sign-in: tokens of a session at ``acr`` aal2 (bound to the key of
    a ``DPoP`` proof of this request, if any: RFC 9449)."""
    dpop_jkt = await signin_key(request, services)
    flow_id, binding = api_flow_ref(body.flow_id)
    _, verified = await services.signin.finish_passkey(
        flow_id, body.credential, ctx, binding=binding
    )
    pair = await services.sessions.open_api_session(verified, ctx, dpop_jkt=dpop_jkt)
    return JSONResponse(TokenResponse.of(pair).model_dump(mode="json"), headers=_NO_STORE)
