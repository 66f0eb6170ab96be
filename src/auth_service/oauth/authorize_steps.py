"""The authorization endpoint's steps between the request and the response: sign in (when
needed), consent (when needed), then the code, answered at the redirect URI with ``iss``
(RFC 9207) by query or form post (OAuth 2.0 Form Post Response Mode).

The hosted pages (``ui.oauth``, ``ui.consent``) drive these steps; this module decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlencode, urlsplit, urlunsplit

from auth_service.audit.context import RequestContext
from auth_service.config.settings import Settings
from auth_service.flows.store import Flow
from auth_service.oauth import authorization
from auth_service.oauth.authorization import (
    Authenticated,
    AuthorizationFailed,
    AuthorizationRequest,
    PendingAuthorizations,
    ResponseTarget,
)
from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.codes import CodeStore
from auth_service.oauth.consent import ConsentStore
from auth_service.oauth.errors import (
    AccessDenied,
    ConsentRequired,
    InvalidRequest,
    LoginRequired,
    OAuthError,
)
from auth_service.oauth.request import Params
from auth_service.oauth.rfc9126 import PushedRequests
from auth_service.oauth.scopes import describe


class Step(StrEnum):
    login = "login"
    consent = "consent"
    issue = "issue"


@dataclass(frozen=True)
class AuthorizationResponse:
    """What goes back to the client: ``params`` at ``target``."""

    target: ResponseTarget
    params: dict[str, str]

    @property
    def form_post(self) -> bool:
        return self.target.response_mode == "form_post"

    def url(self) -> str:
        """The redirect URI with the parameters added to its query (RFC 6749 section 4.1.2)."""
        parts = urlsplit(self.target.redirect_uri)
        query = urlencode(self.params)
        return urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))


class AuthorizeSteps:
    def __init__(
        self,
        clients: ClientService,
        consents: ConsentStore,
        codes: CodeStore,
        pending: PendingAuthorizations,
        settings: Callable[[], Settings],
        issuer: str,
        pushed: PushedRequests,
    ) -> None:
        self._clients = clients
        self._pushed = pushed
        self._consents = consents
        self._codes = codes
        self._pending = pending
        self._settings = settings
        self.issuer = issuer

    async def validate(self, params: Params) -> tuple[AuthorizationRequest, Client]:
        """Raises AuthorizationFailed. A pushed request (RFC 9126) is resolved first."""
        params, pushed = await self._pushed.resolve(params)
        request, client = await authorization.validate(params, self._clients)
        if not pushed and self._pushed.required(client):
            refused = InvalidRequest("this client must use pushed authorization requests")
            raise AuthorizationFailed(refused, request.target)
        return request, client

    def respond(self, target: ResponseTarget, **params: str | None) -> AuthorizationResponse:
        values = {k: v for k, v in params.items() if v is not None}
        if target.state is not None:
            values["state"] = target.state
        values["iss"] = self.issuer  # RFC 9207 section 2
        return AuthorizationResponse(target, values)

    def error_response(self, failed: AuthorizationFailed) -> AuthorizationResponse | None:
        """The error at the client's redirect URI, or None when it must be shown instead."""
        if failed.target is None:
            return None
        error = failed.error
        return self.respond(
            failed.target, error=error.error, error_description=error.description or None
        )

    async def next_step(
        self, request: AuthorizationRequest, client: Client, session: Authenticated | None
    ) -> Step:
        """What the browser must do next. Raises AuthorizationFailed for prompt=none when
        the user would have to act (OIDC Core 3.1.2.6)."""
        silent = "none" in request.prompt
        if authorization.login_needed(request, session):
            if silent:
                raise AuthorizationFailed(LoginRequired("the user must sign in"), request.target)
            return Step.login
        assert session is not None
        asked = "consent" in request.prompt
        if not asked and (
            client.first_party
            or await self._consents.covers(session.user_id, client, request.scopes)
        ):
            return Step.issue
        if silent:
            raise AuthorizationFailed(ConsentRequired("the user must consent"), request.target)
        return Step.consent

    async def park(
        self, request: AuthorizationRequest, client: Client, *, binding: str
    ) -> uuid.UUID:
        """Keep the request server-side while the browser signs in or consents."""
        ttl = self._settings().ui.flow_ttl_seconds
        return await self._pending.park(request, client.tenant_id, binding=binding, ttl=ttl)

    async def resume(
        self, flow_id: uuid.UUID, *, binding: str
    ) -> tuple[Flow, AuthorizationRequest, Client]:
        """A parked request. Raises FlowExpired, or AuthorizationFailed when its client is
        gone (nowhere safe to answer)."""
        flow, request = await self._pending.load(flow_id, binding=binding)
        client = await self._clients.find(request.client_id)
        if client is None:
            raise AuthorizationFailed(InvalidRequest("the client no longer exists"), None)
        return flow, request, client

    async def issue(
        self,
        request: AuthorizationRequest,
        client: Client,
        session: Authenticated,
        flow: Flow | None,
    ) -> AuthorizationResponse:
        """The code (section 4.1.2). A parked request is finished first: answered once."""
        if flow is not None:
            await self._pending.finish(flow)
        code = await self._codes.issue(
            client_pk=client.pk,
            tenant_id=client.tenant_id,
            user_id=session.user_id,
            request={
                "redirect_uri": request.redirect_uri,
                "redirect_uri_sent": request.redirect_uri_sent,
                "scope": " ".join(request.scopes),
                "nonce": request.nonce,
                "code_challenge": request.code_challenge,
                "resources": list(request.resources),
                "auth_time": session.auth_time.isoformat(),
                "acr": session.acr,
                "amr": list(session.amr),
                "sid": str(session.session_id),
            },
            ttl_seconds=self._settings().oauth.authorization_code_ttl_seconds,
        )
        return self.respond(request.target, code=code)

    async def allow(
        self,
        request: AuthorizationRequest,
        client: Client,
        session: Authenticated,
        flow: Flow,
        ctx: RequestContext,
    ) -> AuthorizationResponse:
        """The user allowed the request on the consent page: remember it, answer the code."""
        await self._consents.grant(session.user_id, client, request.scopes, ctx)
        return await self.issue(request, client, session, flow)

    async def deny(self, request: AuthorizationRequest, flow: Flow) -> AuthorizationResponse:
        await self._pending.finish(flow)
        error: OAuthError = AccessDenied("the user denied the request")
        return self.respond(request.target, error=error.error, error_description=error.description)

    def scope_descriptions(self, scopes: tuple[str, ...]) -> list[tuple[str, str]]:
        """Each scope with what it grants (a msgid for the standard ones)."""
        custom = self._settings().oauth.scopes
        return [(scope, describe(scope, custom)) for scope in scopes]
