"""HTTP routes of sessions: login, refresh, logout, own sessions."""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from auth_service.sessions.schemas import LoginRequest, RefreshRequest, SessionOut, TokenResponse
from auth_service.sessions.service import TokenPair
from auth_service.web.deps import (
    ContextDep,
    FreshPrincipal,
    ServicesDep,
    get_context,
    get_services,
)
from auth_service.web.dpop import signin_key
from auth_service.web.openapi import problem_responses

router = APIRouter(prefix="/v1")

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _tokens(response: TokenResponse) -> JSONResponse:
    # RFC 6749 section 5.1: token responses must not be cached.
    return JSONResponse(response.model_dump(mode="json"), headers=_NO_STORE)


def _rotated(pair: TokenPair) -> Response:
    """The refresh answer: the same JSON as ``_tokens(TokenResponse.of(pair))`` (the same
    keys in the same order, as JSONResponse renders them), serialised without building and
    dumping the pydantic model on the hot path (tests/api/test_refresh_fast_path.py)."""
    body = {
        "access_token": pair.access_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
        "refresh_token": pair.refresh_token,
        "session_id": str(pair.session_id),
    }
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
        media_type="application/json",
        headers=_NO_STORE,
    )


@router.post(
    "/auth/login",
    response_model=TokenResponse,
    tags=["auth"],
    responses=problem_responses(400, 401, 403, 422, 429, 503),
)
async def login(
    body: LoginRequest, request: Request, services: ServicesDep, ctx: ContextDep
) -> JSONResponse:
    """Exchange email and password for an access token and a refresh token.

    With a ``DPoP`` proof of this request (RFC 9449), both are bound to the proof's key.
    When a second factor is due the answer is 401 ``mfa-required`` with a flow to finish at
    ``/v1/auth/login/mfa`` — unless ``totp_code`` carries the authenticator app's current
    code, which finishes the sign-in in this request (a wrong code: 401 ``invalid-factor``)."""
    dpop_jkt = await signin_key(request, services)
    verified = await services.signin.password(body.email, body.password, ctx)
    pair = await services.signin.api_session(
        verified, ctx, totp_code=body.totp_code, dpop_jkt=dpop_jkt
    )
    return _tokens(TokenResponse.of(pair))


@router.post(
    "/auth/refresh",
    response_model=TokenResponse,
    tags=["auth"],
    responses=problem_responses(400, 401, 422, 429, 503),
)
async def refresh(body: RefreshRequest, request: Request) -> Response:
    """Rotate: the presented refresh token is spent and a new pair returned.

    Presenting a spent token revokes its whole session (reuse detection). A session opened
    with DPoP needs a ``DPoP`` proof by the same key (400 ``dpop-key-required`` otherwise,
    nothing spent); the new access token is bound to it again.
    """
    # The services and the context are read here rather than declared as dependencies:
    # FastAPI's resolution of two sub-dependencies was ~7 % of a refresh's CPU (profile in
    # bench/results/2026-12-05-refresh/report.md); what they return is the same.
    services = await get_services(request)
    dpop_jkt = await signin_key(request, services)
    pair = await services.sessions.refresh(
        body.refresh_token, await get_context(request), dpop_jkt=dpop_jkt
    )
    return _rotated(pair)


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["auth"],
    responses=problem_responses(401, 422),
)
async def logout(body: RefreshRequest, services: ServicesDep, ctx: ContextDep) -> Response:
    await services.sessions.logout(body.refresh_token, ctx)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/sessions",
    response_model=list[SessionOut],
    tags=["sessions"],
    responses=problem_responses(401),
)
async def list_sessions(principal: FreshPrincipal, services: ServicesDep) -> list[SessionOut]:
    sessions = await services.sessions.list_sessions(principal.claims.subject)
    return [SessionOut.of(s, principal.claims.session_id) for s in sessions]


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["sessions"],
    responses=problem_responses(401, 404),
)
async def revoke_session(
    session_id: uuid.UUID, principal: FreshPrincipal, services: ServicesDep
) -> Response:
    await services.sessions.revoke_session(principal.claims.subject, session_id, principal.context)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
