"""The provider's HTTP face for machines: discovery, token, introspection, revocation,
userinfo, dynamic registration. The browser-facing endpoints (authorize, consent, logout)
are hosted pages (``ui.oauth``, ``ui.consent``).

Errors here are answered as their RFCs define them, ``{"error", "error_description"}``,
not as problem+json (ADR 0700): ``OAuthRoute`` turns any failure of these routes into that
form, with ``WWW-Authenticate`` where the RFCs require it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from auth_service.oauth import rfc8414, rfc8628, rfc9126, rfc9449
from auth_service.oauth.client_auth import challenge
from auth_service.oauth.errors import (
    InsufficientScope,
    InvalidClient,
    InvalidRequest,
    InvalidToken,
    OAuthError,
)
from auth_service.oauth.request import EndpointRequest, Params
from auth_service.oauth.rfc9449 import DPoPChallenge
from auth_service.oauth.service import OAuthService
from auth_service.problems import ServiceError
from auth_service.web.deps import get_context
from auth_service.web.static import not_modified

log = structlog.get_logger(__name__)

FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
DISCOVERY_CACHE_CONTROL = "public, max-age=300"
# Bearer endpoints (RFC 6750 section 3) answer their errors with this challenge.
BEARER_PATHS = frozenset({rfc8414.USERINFO, rfc8414.REGISTER})
MAX_JSON_BODY = 64 * 1024


def _oauth(request: Request) -> OAuthService:
    provider: OAuthService = request.app.state.services.oauth
    return provider


def _realm(request: Request) -> str:
    return _oauth(request).issuer


# An answer of a protocol endpoint before rendering: status, JSON body, headers (in order).
Answer = tuple[int, dict[str, Any], dict[str, str]]


def oauth_error(path: str, realm: str, exc: OAuthError) -> Answer:
    """RFC 6749 section 5.2 (and RFC 6750 section 3 on bearer endpoints)."""
    headers = dict(NO_STORE)
    if isinstance(exc, DPoPChallenge):
        return _dpop_error(exc, headers)
    if isinstance(exc, InvalidClient):
        headers["WWW-Authenticate"] = challenge(realm)
    elif path in BEARER_PATHS and isinstance(exc, InvalidToken | InsufficientScope):
        value = f'Bearer realm="{realm}"'
        if exc.description or not isinstance(exc, InvalidToken):
            value += f', error="{exc.error}"'
            if exc.description:
                value += f', error_description="{exc.description}"'
        headers["WWW-Authenticate"] = value
    return exc.status, exc.body(), headers


def _dpop_error(exc: DPoPChallenge, headers: dict[str, str]) -> Answer:
    """RFC 9449 sections 7.1 and 8: a fresh nonce when one is needed; at a resource, the
    DPoP challenge."""
    if exc.nonce:
        headers["DPoP-Nonce"] = exc.nonce
    if exc.status == 401:
        algs = " ".join(rfc9449.ALGORITHMS)
        value = f'DPoP algs="{algs}", error="{exc.error}"'
        if exc.description:
            value += f', error_description="{exc.description}"'
        headers["WWW-Authenticate"] = value
    return exc.status, exc.body(), headers


def _service_failure(path: str, realm: str, exc: ServiceError) -> Answer:
    status = exc.problem.status
    headers = dict(NO_STORE)
    if exc.retry_after_seconds is not None:
        headers["Retry-After"] = str(exc.retry_after_seconds)
    if status in (429, 503):
        body = {"error": "temporarily_unavailable", "error_description": exc.problem.title}
        return status, body, headers
    return oauth_error(path, realm, InvalidRequest(exc.problem.title))


def failure(path: str, realm: str, exc: Exception) -> Answer:
    """Any failure of a protocol endpoint in its RFC's form; an unexpected one is logged and
    answered ``server_error`` (never a stack trace, never problem+json). Shared by
    ``OAuthRoute`` and the front layer (``web.protocol_front``)."""
    if isinstance(exc, OAuthError):
        return oauth_error(path, realm, exc)
    if isinstance(exc, ServiceError):
        return _service_failure(path, realm, exc)
    if isinstance(exc, RequestValidationError):
        return oauth_error(path, realm, InvalidRequest("malformed request"))
    log.error("unhandled_exception", error=type(exc).__name__, path=path)
    return 500, {"error": "server_error"}, dict(NO_STORE)


class OAuthRoute(APIRoute):
    """Every failure of a protocol endpoint in its RFC's form (``failure``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def oauth_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                status, body, headers = failure(request.url.path, _realm(request), exc)
                return JSONResponse(body, status_code=status, headers=headers)

        return oauth_handler


# Described by discovery (RFC 8414) and docs/oidc.md, not OpenAPI: their errors are the
# RFCs', not problem+json (ADR 0700), and their bodies are forms.
router = APIRouter(tags=["oauth"], route_class=OAuthRoute, include_in_schema=False)


async def form_params(request: Request) -> Params:
    """The form body, every pair as sent (duplicates are judged by ``Params``)."""
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media != FORM:
        raise InvalidRequest(f"send the parameters as {FORM}")
    form = await request.form()
    pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    return Params.of(pairs)


async def endpoint_request(request: Request) -> EndpointRequest:
    return EndpointRequest(
        await form_params(request),
        request.headers.get("authorization"),
        await get_context(request),
        tuple(request.headers.getlist("dpop")),
    )


@router.get(rfc8414.OPENID_CONFIGURATION)
@router.get(rfc8414.AUTHORIZATION_SERVER)
async def discovery(request: Request) -> Response:
    """OpenID Provider and authorization server metadata (RFC 8414, OIDC Discovery): bytes
    serialised once per settings reload, with a strong ETag (``web.static.StaticDocuments``
    answers the same in front of FastAPI)."""
    document = _oauth(request).discovery_document()
    headers = {"Cache-Control": DISCOVERY_CACHE_CONTROL, "ETag": document.etag}
    if not_modified(request.headers.get("if-none-match"), document.etag):
        return Response(status_code=304, headers=headers)
    return Response(document.body, media_type="application/json", headers=headers)


@router.post(rfc8414.TOKEN)
async def token(request: Request) -> JSONResponse:
    """The token endpoint (RFC 6749 section 3.2): authorization_code, refresh_token,
    client_credentials."""
    body = await _oauth(request).token(await endpoint_request(request))
    return JSONResponse(body, headers=NO_STORE)


@router.post(rfc9126.PAR, status_code=201)
async def pushed_authorization_request(request: Request) -> JSONResponse:
    """RFC 9126: a client-authenticated authorization request; answers its request_uri."""
    body = await _oauth(request).push_authorization_request(await endpoint_request(request))
    return JSONResponse(body, status_code=201, headers=NO_STORE)


@router.post(rfc8628.DEVICE_AUTHORIZATION)
async def device_authorization(request: Request) -> JSONResponse:
    """RFC 8628 section 3.1: a client-authenticated device authorization request; answers
    the device code, the user code and where the user enters it."""
    body = await _oauth(request).device_authorization(await endpoint_request(request))
    return JSONResponse(body, headers=NO_STORE)


@router.post(rfc8414.INTROSPECT)
async def introspect(request: Request) -> JSONResponse:
    """RFC 7662: client-authenticated; ``active: false`` for anything not the caller's."""
    body = await _oauth(request).introspect(await endpoint_request(request))
    return JSONResponse(body, headers=NO_STORE)


@router.post(rfc8414.REVOKE)
async def revoke(request: Request) -> Response:
    """RFC 7009: 200 whatever the token was, once the client is authenticated."""
    await _oauth(request).revoke(await endpoint_request(request))
    return Response(status_code=200, headers=NO_STORE)


@router.get(rfc8414.USERINFO)
@router.post(rfc8414.USERINFO)
async def userinfo(request: Request) -> JSONResponse:
    """OIDC Core 5.3: the bearer token in the header, or ``access_token`` in a form body."""
    body_token = None
    if request.method == "POST" and request.headers.get("content-type", "").startswith(FORM):
        body_token = (await form_params(request)).get("access_token")
    claims = await _oauth(request).dpop.userinfo(
        request.headers.get("authorization"),
        body_token,
        request.headers.getlist("dpop"),
        request.method,
    )
    return JSONResponse(claims, headers=NO_STORE)


@router.post(rfc8414.REGISTER, status_code=201)
async def register(request: Request) -> JSONResponse:
    """RFC 7591 dynamic registration (when enabled), with an initial access token."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw and len(raw) <= MAX_JSON_BODY else None
    except ValueError:
        body = None
    answer = await _oauth(request).register(
        body, request.headers.get("authorization"), await get_context(request)
    )
    return JSONResponse(answer, status_code=201, headers=NO_STORE)
