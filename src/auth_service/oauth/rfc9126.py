"""Pushed authorization requests (RFC 9126).

The client POSTs its authorization request to the PAR endpoint, authenticated as at the
token endpoint, and gets a ``request_uri`` (``urn:ietf:params:oauth:request_uri:<id>``)
to send the browser with instead of the parameters. The pushed request is validated when
it is pushed (section 2.1), kept server-side as a flow bound to the client, and used once
within ``oauth.pushed_request_ttl_seconds`` (section 4: one-time use is recommended).

At the authorization endpoint only the pushed parameters count (section 4): a request with
our ``request_uri`` is replaced by what was pushed. A request_uri that is unknown, expired,
already used or another client's is ``invalid_request_uri`` (OIDC Core 3.1.2.6), shown to
the user: without the pushed request there is no validated redirect URI to answer at.
Clients registered with ``require_pushed_authorization_requests`` (or every client, with the
setting of that name) must use it (section 6).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from auth_service.config.settings import Settings
from auth_service.flows.errors import FlowExpired
from auth_service.flows.store import FlowKind, FlowStore
from auth_service.oauth import authorization
from auth_service.oauth.authorization import AuthorizationFailed
from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.errors import InvalidRequest, OAuthError, RequestNotSupported
from auth_service.oauth.request import EndpointRequest, Params

PAR = "/oauth2/par"
URN = "urn:ietf:params:oauth:request_uri:"
# The client's credentials are no part of the authorization request (section 2.1).
CREDENTIALS = frozenset({"client_secret", "client_assertion", "client_assertion_type"})


class InvalidRequestUri(OAuthError):
    """OIDC Core 3.1.2.6: the request_uri is not (or no longer) usable."""

    error = "invalid_request_uri"


def _binding(client_id: str) -> str:
    return "par:" + client_id


class PushedRequests:
    def __init__(
        self, flows: FlowStore, clients: ClientService, settings: Callable[[], Settings]
    ) -> None:
        self._flows = flows
        self._clients = clients
        self._settings = settings

    def required(self, client: Client) -> bool:
        """Whether ``client`` may send authorization requests only by PAR (section 6)."""
        oauth = self._settings().oauth
        return oauth.require_pushed_authorization_requests or (
            client.require_pushed_authorization_requests
        )

    def metadata(self, issuer: str) -> dict[str, Any]:
        """Section 5: what discovery says."""
        doc: dict[str, Any] = {"pushed_authorization_request_endpoint": issuer + PAR}
        if self._settings().oauth.require_pushed_authorization_requests:
            doc["require_pushed_authorization_requests"] = True
        return doc

    async def push(self, request: EndpointRequest, client: Client) -> dict[str, Any]:
        """Section 2: validate and keep the request of the authenticated ``client``; the
        answer (``request_uri``, ``expires_in``). Raises OAuthError (answered as JSON)."""
        params = request.params
        if params.get("request_uri") is not None:
            raise InvalidRequest("request_uri must not be pushed")
        if params.get("request") is not None:
            raise RequestNotSupported("the request parameter is not supported")
        items = [(k, v) for k, v in params.items if k not in CREDENTIALS and k != "client_id"]
        items.append(("client_id", client.client_id))
        pushed = Params.of(items)
        try:
            await authorization.validate(pushed, self._clients)
        except AuthorizationFailed as exc:
            raise exc.error from None
        ttl = self._settings().oauth.pushed_request_ttl_seconds
        flow = await self._flows.create(
            FlowKind.pushed_authorization,
            binding=_binding(client.client_id),
            tenant_id=client.tenant_id,
            ttl_seconds=ttl,
            state={"params": [[k, v] for k, v in items]},
        )
        return {"request_uri": URN + flow.id.hex, "expires_in": ttl}

    async def resolve(self, params: Params) -> tuple[Params, bool]:
        """The parameters of an authorization request and whether they were pushed: for a
        request_uri of ours, the pushed ones (spent now); otherwise ``params`` as sent.
        Raises AuthorizationFailed (shown, never redirected)."""
        try:
            request_uri = params.get("request_uri")
            if request_uri is None or not request_uri.startswith(URN):
                return params, False
            client_id = params.require("client_id")
        except OAuthError as exc:
            raise AuthorizationFailed(exc, None) from None
        try:
            flow_id = uuid.UUID(hex=request_uri[len(URN) :])
            flow = await self._flows.load(
                flow_id, FlowKind.pushed_authorization, binding=_binding(client_id)
            )
            await self._flows.finish(flow)
        except (ValueError, FlowExpired):
            failure = InvalidRequestUri("the request_uri is unknown, expired or already used")
            raise AuthorizationFailed(failure, None) from None
        return Params.of((str(k), str(v)) for k, v in flow.state["params"]), True
