"""HTTP routes of the accounts domain: thin adapters over AccountService."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from auth_service.accounts.schemas import (
    ChangePasswordRequest,
    ForgotPasswordRequest,
    RegisterRequest,
    ResetPasswordRequest,
    UpdateProfileRequest,
    UserOut,
    VerifyEmailRequest,
)
from auth_service.web.deps import ContextDep, FreshPrincipal, ServicesDep
from auth_service.web.openapi import problem_responses
from auth_service.web.stepup import require_step_up

router = APIRouter(prefix="/v1")


@router.post(
    "/auth/register",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    tags=["auth"],
    responses=problem_responses(403, 422, 429, 503),
)
async def register(body: RegisterRequest, services: ServicesDep, ctx: ContextDep) -> Response:
    """Create an account and email a verification link (``token=``). The answer is the same
    when the address already has an account: its owner is emailed instead (ADR 0011)."""
    await services.accounts.registration.register(body.email, body.password, body.name, ctx)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/auth/password/change",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["auth"],
    responses=problem_responses(401, 403, 422, 429, 503),
    dependencies=[Depends(require_step_up("password_change"))],
)
async def change_password(
    body: ChangePasswordRequest, principal: FreshPrincipal, services: ServicesDep
) -> Response:
    """Change the password; every other session of the user is revoked."""
    claims = principal.claims
    await services.accounts.credentials.change_password(
        claims.subject,
        claims.session_id,
        body.current_password,
        body.new_password,
        principal.context,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/password/forgot",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    tags=["auth"],
    responses=problem_responses(403, 422, 429),
)
async def forgot_password(
    body: ForgotPasswordRequest, services: ServicesDep, ctx: ContextDep
) -> Response:
    """Email a reset link if the account exists. The answer never says whether it does."""
    await services.accounts.recovery.forgot_password(body.email, ctx)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/auth/password/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["auth"],
    responses=problem_responses(400, 403, 422, 429, 503),
)
async def reset_password(
    body: ResetPasswordRequest, services: ServicesDep, ctx: ContextDep
) -> Response:
    """Set a new password with the emailed single-use token; all sessions are revoked."""
    await services.accounts.recovery.reset_password(body.token, body.new_password, ctx)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/email/verify",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["auth"],
    responses=problem_responses(400, 422, 429),
)
async def verify_email(
    body: VerifyEmailRequest, services: ServicesDep, ctx: ContextDep
) -> Response:
    await services.accounts.verification.verify(body.token, ctx)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    tags=["auth"],
    responses=problem_responses(401, 429),
)
async def resend_verification(principal: FreshPrincipal, services: ServicesDep) -> Response:
    await services.accounts.verification.resend(principal.claims.subject, principal.context)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.get("/users/me", response_model=UserOut, tags=["users"], responses=problem_responses(401))
async def me(principal: FreshPrincipal) -> UserOut:
    # Read with the session check (one round trip), or from this worker's identity cache
    # while every change reaches it (ADR 0431).
    return UserOut.of(principal.identity)


@router.patch(
    "/users/me", response_model=UserOut, tags=["users"], responses=problem_responses(401, 422)
)
async def update_me(
    body: UpdateProfileRequest, principal: FreshPrincipal, services: ServicesDep
) -> UserOut:
    return UserOut.of(
        await services.accounts.users.update_profile(principal.claims.subject, body.name)
    )
