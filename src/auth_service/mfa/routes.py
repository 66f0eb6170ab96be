"""HTTP routes of the MFA domain: a signed-in user's factors under ``/v1/mfa``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from auth_service.mfa.deps import SessionAuth
from auth_service.mfa.policy import required_by_role
from auth_service.mfa.schemas import (
    CodeRequest,
    FactorsOut,
    PasskeyOptionsOut,
    PasskeyOut,
    PasskeyRegisterRequest,
    PasskeyRenameRequest,
    RecoveryCodesOut,
    TotpEnrolmentOut,
)
from auth_service.web.deps import FreshPrincipal, Principal, ServicesDep
from auth_service.web.openapi import problem_responses

router = APIRouter(prefix="/v1/mfa", tags=["mfa"], responses=problem_responses(401))

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def session_auth(principal: Principal) -> SessionAuth:
    """How the caller's session authenticated, from its access token (signed claims)."""
    claims = principal.claims
    when = datetime.fromtimestamp(claims.auth_time or 0, UTC)
    return SessionAuth(claims.acr, when)


@router.get("", response_model=FactorsOut)
async def factors(principal: FreshPrincipal, services: ServicesDep) -> FactorsOut:
    """The caller's factors: authenticator app, passkeys, recovery codes left."""
    user_id = principal.identity.id
    summary = await services.mfa.summary(user_id)
    passkeys = await services.mfa.passkeys.of_user(user_id)
    return FactorsOut(
        totp=summary.totp,
        passkeys=[PasskeyOut.of(p) for p in passkeys],
        recovery_codes_left=summary.recovery_codes_left,
        required=required_by_role(principal.identity, services.settings.mfa),
    )


@router.post("/totp", response_model=TotpEnrolmentOut, responses=problem_responses(409))
async def begin_totp(principal: FreshPrincipal, services: ServicesDep) -> JSONResponse:
    """Start enrolling an authenticator app; confirm with its first code."""
    found = await services.mfa.factors.begin_totp(principal.identity)
    body = TotpEnrolmentOut(secret=found.secret, otpauth_uri=found.uri, qr_svg=found.qr_svg)
    return JSONResponse(body.model_dump(), headers=_NO_STORE)


@router.post(
    "/totp/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(409, 422),
)
async def confirm_totp(
    body: CodeRequest, principal: FreshPrincipal, services: ServicesDep
) -> Response:
    await services.mfa.factors.confirm_totp(principal.identity, body.code, principal.context)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/totp", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(403, 404)
)
async def remove_totp(principal: FreshPrincipal, services: ServicesDep) -> Response:
    """Needs a recent sign-in (``mfa.recent_auth_seconds``): else 403 step-up-required."""
    await services.mfa.factors.remove_totp(
        principal.identity, session_auth(principal), principal.context
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/recovery-codes", response_model=RecoveryCodesOut, responses=problem_responses(403))
async def recovery_codes(principal: FreshPrincipal, services: ServicesDep) -> JSONResponse:
    """A new set of recovery codes, shown once; the previous set stops working.
    Regenerating needs a recent sign-in."""
    codes = await services.mfa.factors.generate_recovery_codes(
        principal.identity, session_auth(principal), principal.context
    )
    return JSONResponse(RecoveryCodesOut(codes=codes).model_dump(), headers=_NO_STORE)


@router.get("/passkeys", response_model=list[PasskeyOut])
async def passkeys(principal: FreshPrincipal, services: ServicesDep) -> list[PasskeyOut]:
    return [PasskeyOut.of(p) for p in await services.mfa.passkeys.of_user(principal.identity.id)]


@router.post(
    "/passkeys/options", response_model=PasskeyOptionsOut, responses=problem_responses(403)
)
async def passkey_options(principal: FreshPrincipal, services: ServicesDep) -> JSONResponse:
    """Options for ``navigator.credentials.create()`` (a discoverable credential with user
    verification) and the token to send back with its result."""
    options, token = await services.mfa.passkeys.registration_options(principal.identity)
    body = {"registration_token": token, "publicKey": options}
    return JSONResponse(body, headers=_NO_STORE)


@router.post(
    "/passkeys",
    status_code=status.HTTP_201_CREATED,
    response_model=PasskeyOut,
    responses=problem_responses(401, 403, 422),
)
async def register_passkey(
    body: PasskeyRegisterRequest, principal: FreshPrincipal, services: ServicesDep
) -> PasskeyOut:
    info = await services.mfa.passkeys.register(
        principal.identity, body.credential, body.registration_token, body.name, principal.context
    )
    return PasskeyOut.of(info)


@router.patch(
    "/passkeys/{passkey_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 422),
)
async def rename_passkey(
    passkey_id: uuid.UUID,
    body: PasskeyRenameRequest,
    principal: FreshPrincipal,
    services: ServicesDep,
) -> Response:
    await services.mfa.passkeys.rename(
        principal.identity.id, passkey_id, body.name, principal.context
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/passkeys/{passkey_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404),
)
async def remove_passkey(
    passkey_id: uuid.UUID, principal: FreshPrincipal, services: ServicesDep
) -> Response:
    """Needs a recent sign-in (``mfa.recent_auth_seconds``): else 403 step-up-required."""
    await services.mfa.passkeys.remove(
        principal.identity, passkey_id, session_auth(principal), principal.context
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


__all__ = ["PasskeyOptionsOut", "router", "session_auth"]
