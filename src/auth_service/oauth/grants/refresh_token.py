"""The refresh token grant (RFC 6749 section 6), with rotation and reuse detection.

The exchange is the JSON API's (``sessions.refresh``: one conditional UPDATE spends the
token, a spent token presented again revokes the grant), bound to the client: another
client's token is ``invalid_grant`` and is neither spent nor rotated. A narrower ``scope``
may be asked for (never a wider one: checked before anything is spent); ID tokens minted on
refresh keep the original ``auth_time`` and carry no ``nonce`` (OIDC Core 12.2).
"""

from __future__ import annotations

from auth_service.oauth.authorization import check_resources
from auth_service.oauth.clients import Client
from auth_service.oauth.errors import InvalidGrant, InvalidScope, InvalidTarget
from auth_service.oauth.grants import GrantContext
from auth_service.oauth.issuance import TokenResponse
from auth_service.oauth.request import EndpointRequest
from auth_service.oauth.rfc9068 import UserFacts
from auth_service.oauth.scopes import format_scope, parse_scope
from auth_service.sessions.errors import InvalidRefreshToken, RefreshTokenReused


class RefreshTokenGrant:
    name = "refresh_token"

    def __init__(self, context: GrantContext) -> None:
        self._ctx = context

    async def exchange(self, request: EndpointRequest, client: Client) -> TokenResponse:
        params = request.params
        token = params.require("refresh_token")
        asked_scope = parse_scope(params.get("scope"))
        asked_resources = check_resources(params.all("resource"), client)
        if asked_scope:
            info = await self._ctx.grants.refresh_token_info(token, client.client_id)
            if info is not None and not set(asked_scope) <= set(info.scope.split()):
                raise InvalidScope("scope exceeds what was granted")
        try:
            rotated = await self._ctx.sessions.rotate_refresh_token(
                token, request.context, client_id=client.client_id
            )
        except RefreshTokenReused:
            raise InvalidGrant("the refresh token was already used; the grant is revoked") from None
        except InvalidRefreshToken:
            raise InvalidGrant("the refresh token is invalid, expired or revoked") from None
        facts = rotated.facts
        granted = tuple((facts.scope or "").split())
        scope = asked_scope or granted
        if not set(scope) <= set(granted):
            raise InvalidScope("scope exceeds what was granted")
        if not set(asked_resources) <= set(facts.resources):
            raise InvalidTarget("resource was not part of the grant")
        user = UserFacts(rotated.user_id, facts.auth_time, facts.acr, facts.amr, rotated.session_id)
        return await self._ctx.issuer.for_user(
            client,
            scope=format_scope(scope),
            resources=asked_resources or facts.resources,
            user=user,
            lifetimes=self._ctx.lifetimes(),
            refresh_token=rotated.refresh_token,
            nonce=None,
            browser_session_id=facts.browser_session_id,
        )
