"""FastAPI dependencies: services, request context, bearer authentication."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from auth_service.accounts.identity import Identity
from auth_service.audit.context import RequestContext
from auth_service.keys.errors import InvalidToken
from auth_service.keys.tokens import AccessClaims
from auth_service.security.dpop import presented
from auth_service.services import Services
from auth_service.sessions.errors import SessionNotFound
from auth_service.web import dpop
from auth_service.web.errors import FORBIDDEN, INVALID_TOKEN, UNAUTHENTICATED, ApiProblem


# async: FastAPI runs a plain ``def`` dependency in a worker thread, two thread hops per
# request for a dictionary lookup (measured in bench/README.md).
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_context(request: Request) -> RequestContext:
    ua = request.headers.get("user-agent")
    return RequestContext(
        ip=getattr(request.state, "client_ip", None)
        or (request.client.host if request.client else None),
        user_agent=ua[:512] if ua else None,
        request_id=getattr(request.state, "request_id", None),
    )


ServicesDep = Annotated[Services, Depends(get_services)]
ContextDep = Annotated[RequestContext, Depends(get_context)]


async def bearer_claims(request: Request, services: ServicesDep) -> AccessClaims:
    """Verify the access token of ``Authorization: Bearer`` (RFC 6750) or, for a token bound
    to a DPoP key (``cnf.jkt``), of ``Authorization: DPoP`` with a proof by that key
    (RFC 9449 section 7, ``web.dpop``); no database round trip for Bearer. A bound token as
    Bearer and an unbound one as DPoP are refused (docs/adr/0732)."""
    found = presented(request.headers.get("authorization"))
    if found is None:
        raise ApiProblem(UNAUTHENTICATED, headers={"WWW-Authenticate": dpop.challenge()})
    scheme, token = found
    try:
        claims = await services.access_tokens.verify(token)
    except InvalidToken:
        raise ApiProblem(
            INVALID_TOKEN,
            headers={"WWW-Authenticate": dpop.challenge(scheme, "invalid_token")},
        ) from None
    if claims.jkt is None:
        if scheme == "dpop":
            raise dpop.wrong_token(scheme, "the access token is not DPoP-bound: use Bearer")
        return claims
    if scheme == "bearer":
        raise dpop.wrong_token(
            scheme, "the access token is DPoP-bound: use the DPoP scheme and a proof"
        )
    await dpop.resource_proof(request, services, token, claims.jkt)
    return claims


def _scheme(claims: AccessClaims) -> str:
    return "dpop" if claims.jkt is not None else "bearer"


@dataclass(frozen=True)
class Principal:
    claims: AccessClaims
    context: RequestContext
    identity: Identity  # the user, read with the session check of this request


async def _principal(
    claims: AccessClaims, services: Services, ctx: RequestContext, *, cached: bool
) -> Principal:
    sessions = services.sessions
    try:
        if cached:
            identity = await sessions.cached_identity(claims.session_id, claims.subject)
        else:
            identity = await sessions.active_identity(claims.session_id, claims.subject)
    except SessionNotFound:
        raise ApiProblem(
            INVALID_TOKEN,
            detail="the session of this token has ended",
            headers={"WWW-Authenticate": dpop.challenge(_scheme(claims), "invalid_token")},
        ) from None
    return Principal(claims, ctx.with_actor(claims.subject), identity)


async def fresh_principal(
    claims: Annotated[AccessClaims, Depends(bearer_claims)],
    services: ServicesDep,
    ctx: ContextDep,
) -> Principal:
    """A valid token whose session is still live (not logged out, revoked or expired) and
    whose user is active; one database round trip, which also reads the user and roles, or
    none when this worker's identity cache may answer (every change to the session or the
    user reaches it before the changing request returns: ADR 0431)."""
    return await _principal(claims, services, ctx, cached=True)


async def read_principal(
    claims: Annotated[AccessClaims, Depends(bearer_claims)],
    services: ServicesDep,
    ctx: ContextDep,
) -> Principal:
    """``fresh_principal`` always read from the database (the admin routes)."""
    return await _principal(claims, services, ctx, cached=False)


async def admin_principal(principal: Annotated[Principal, Depends(read_principal)]) -> Principal:
    """Admin routes check roles and status as read in this request from the database (never
    the identity cache, ADR 0431), not the token's claims: a role removed a minute ago must
    not still work."""
    if not principal.identity.is_admin:
        raise ApiProblem(FORBIDDEN, detail="the admin role is required")
    return principal


FreshPrincipal = Annotated[Principal, Depends(fresh_principal)]
AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
