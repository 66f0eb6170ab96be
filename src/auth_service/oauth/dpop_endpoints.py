"""DPoP (RFC 9449) at our endpoints: the token endpoint binds what it issues to the proof's
key; userinfo requires the bound key's proof. The proof rules are ``oauth.rfc9449``'s."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from auth_service.oauth import jose, rfc8414, rfc9449
from auth_service.oauth.clients import ClientService
from auth_service.oauth.dpop_bindings import DPoPBindings
from auth_service.oauth.errors import InvalidGrant, InvalidRequest, InvalidToken
from auth_service.oauth.issuance import TokenResponse
from auth_service.oauth.request import EndpointRequest
from auth_service.oauth.rfc9068 import AccessTokens
from auth_service.oauth.userinfo import UserInfo, bearer_token
from auth_service.sessions.grants import GrantSessions


class DPoPEndpoints:
    def __init__(
        self,
        dpop: rfc9449.DPoP,
        bindings: DPoPBindings,
        grants: GrantSessions,
        clients: ClientService,
        access: AccessTokens,
        userinfo: UserInfo,
    ) -> None:
        self.dpop = dpop
        self._bindings = bindings
        self._grants = grants
        self._clients = clients
        self._access = access
        self._userinfo = userinfo

    async def token(
        self, request: EndpointRequest, issue: Callable[[], Awaitable[TokenResponse]]
    ) -> dict[str, Any]:
        """The token response of ``issue``, bound to the request's DPoP key if it has one
        (section 5); a public client's grant keeps that key for its refreshes."""
        url = self._access.issuer + rfc8414.TOKEN
        proof = await self.dpop.verify(list(request.dpop), method="POST", url=url)
        jkt = proof.jkt if proof else None
        refresh = request.params.get("grant_type") == "refresh_token"
        # Only then does the client's type matter: no extra query for other requests.
        public_client = (jkt is not None or refresh) and await self._public_client(request)
        if public_client and refresh:
            await self._check_refresh(request, jkt)
        reset = rfc9449.BINDING.set(jkt)
        try:
            body = (await issue()).body()
        finally:
            rfc9449.BINDING.reset(reset)
        if jkt is None:
            return body
        body["token_type"] = "DPoP"  # noqa: S105 - a token type
        issued_refresh = body.get("refresh_token")
        if public_client and isinstance(issued_refresh, str):
            client = await self._clients.get(str(request.params.get("client_id")))
            grant = await self._grants.grant_of_refresh_token(issued_refresh, client.client_id)
            if grant is not None:
                await self._bindings.bind(grant, jkt, client.tenant_id)
        return body

    async def _public_client(self, request: EndpointRequest) -> bool:
        """Whether the request names a public client (which sends its client_id)."""
        client = await self._clients.find(request.params.get("client_id"))
        return client is not None and client.public and request.authorization is None

    async def _check_refresh(self, request: EndpointRequest, jkt: str | None) -> None:
        """A bound grant refreshes only with a proof by its key (checked before the refresh
        token is spent)."""
        client_id = str(request.params.get("client_id"))
        grant = await self._grants.grant_of_refresh_token(
            request.params.require("refresh_token"), client_id
        )
        if grant is None:
            return  # the grant answers for an unknown token
        bound = await self._bindings.key_of(grant)
        if bound is not None and bound != jkt:
            raise InvalidGrant("the refresh token is bound to another DPoP key")

    async def userinfo(
        self,
        authorization: str | None,
        body_token: str | None,
        dpop_headers: list[str],
        method: str,
    ) -> dict[str, Any]:
        """UserInfo with ``Bearer`` or ``DPoP`` (section 7). Raises InvalidToken,
        InsufficientScope or a DPoP challenge."""
        found = rfc9449.presented(authorization)
        if found is not None and found[0] == "dpop":
            if body_token is not None:
                raise InvalidRequest("send the access token once")
            scheme, token = found
        else:
            scheme, token = "bearer", bearer_token(authorization, body_token)
        try:
            access = await self._access.verify(token, self._userinfo.leeway)
        except jose.JoseError:
            raise InvalidToken("the access token is invalid or expired") from None
        proof = None
        if scheme == "dpop":
            proof = await self.dpop.verify(
                dpop_headers,
                method=method,
                url=self._access.issuer + rfc8414.USERINFO,
                access_token=token,
                error=rfc9449.ResourceProofError,
            )
        rfc9449.require_binding(access.claims, scheme, proof)
        return await self._userinfo.claims(token, access)
