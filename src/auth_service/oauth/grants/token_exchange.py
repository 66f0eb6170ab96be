"""Token exchange (RFC 8693): a confidential client trades an access token of ours for one
meant for another audience, acting for the token's subject (delegation, section 1.1).

- ``subject_token`` must be one of our access tokens (``subject_token_type``
  ``urn:ietf:params:oauth:token-type:access_token``; any other type is ``invalid_request``),
  active (signature, expiry, not revoked, its grant live) and held by this client: issued to
  it, or naming it in ``aud``. A DPoP-bound one (``cnf.jkt``) needs a DPoP proof of that key
  with this request (RFC 9449 section 7.1's rule, applied to the token presented here).
- The client's policy is its registered ``token_exchange_audiences``: every ``audience`` and
  ``resource`` (section 2.1) must be one of them, and at least one is required.
- ``scope`` may only narrow the subject token's scopes (default: all of them).
- ``actor_token`` (optional, with ``actor_token_type``): one of our access tokens issued to
  this client; its ``sub`` becomes the actor.
- The new access token has the subject's ``sub``, the new ``aud``, and ``act`` (section 4.1)
  naming the actor (the client, or the actor token's subject), with any ``act`` the subject
  token had nested inside (the chain of delegation). It expires no later than the subject
  token and has no ``sid``: it is not a grant of this client's own.
"""

from __future__ import annotations

import time
from typing import Any

from auth_service.audit import events
from auth_service.oauth import jose
from auth_service.oauth.client_metadata import TOKEN_EXCHANGE, absolute_uri
from auth_service.oauth.clients import Client
from auth_service.oauth.errors import (
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    UnauthorizedClient,
)
from auth_service.oauth.grants import GrantContext
from auth_service.oauth.issuance import TokenResponse
from auth_service.oauth.request import EndpointRequest
from auth_service.oauth.rfc9068 import AccessClaims
from auth_service.oauth.rfc9449 import BINDING
from auth_service.oauth.scopes import format_scope, parse_scope

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN


class TokenExchangeGrant:
    name = TOKEN_EXCHANGE

    def __init__(self, context: GrantContext) -> None:
        self._ctx = context

    async def exchange(self, request: EndpointRequest, client: Client) -> TokenResponse:
        """Section 2.1 and 2.2."""
        if client.public:
            raise UnauthorizedClient("token exchange needs a confidential client")
        params = request.params
        subject = await self._token(
            params.require("subject_token"), params.require("subject_token_type"), "subject"
        )
        if not _held_by(subject, client):
            raise InvalidGrant("the subject_token was not issued to this client")
        self._check_binding(subject)
        requested = params.get("requested_token_type")
        if requested is not None and requested != ACCESS_TOKEN_TYPE:
            raise InvalidRequest("requested_token_type must be an access token")
        actor = client.client_id
        actor_token = params.get("actor_token")
        if actor_token is not None:
            found = await self._token(
                actor_token, params.require("actor_token_type"), "actor", client=client
            )
            actor = found.subject
        elif params.get("actor_token_type") is not None:
            raise InvalidRequest("actor_token_type without actor_token")
        audiences = _audiences(params.all("audience"), params.all("resource"), client)
        scope = _narrowed(parse_scope(params.get("scope")), subject.scopes)
        act: dict[str, Any] = {"sub": actor}
        if isinstance(subject.claims.get("act"), dict):
            act["act"] = subject.claims["act"]
        ttl = min(self._ctx.lifetimes().access, subject.expires_at - int(time.time()))
        if ttl <= 0:
            raise InvalidGrant("the subject_token has expired")
        response = await self._ctx.issuer.delegated(
            client, subject=subject.subject, scope=scope, audiences=audiences, act=act, ttl=ttl
        )
        await self._ctx.audit.record(
            events.OAUTH_TOKEN_EXCHANGED,
            request.context,
            subject=subject.user_id,
            details={
                "client_id": client.client_id,
                "subject_client_id": subject.client_id,
                "audience": list(audiences),
                "scope": scope,
                "acting_as": actor,
            },
        )
        return response

    async def _token(
        self, token: str, token_type: str, role: str, *, client: Client | None = None
    ) -> AccessClaims:
        """An active access token of ours (InvalidRequest for another type, InvalidGrant
        otherwise); with ``client``, one issued to it."""
        if token_type != ACCESS_TOKEN_TYPE:
            raise InvalidRequest(f"{role}_token_type must be {ACCESS_TOKEN_TYPE}")
        try:
            claims = await self._ctx.issuer.access.verify(token, 0)
        except jose.JoseError:
            raise InvalidGrant(f"the {role}_token is not an active access token") from None
        revoked = self._ctx.revoked is not None and await self._ctx.revoked.revoked(claims.jti)
        grant = claims.grant_id
        ended = grant is not None and not await self._ctx.grants.grant_live(grant, claims.client_id)
        if revoked or ended or (client is not None and claims.client_id != client.client_id):
            raise InvalidGrant(f"the {role}_token is not an active access token")
        return claims

    @staticmethod
    def _check_binding(subject: AccessClaims) -> None:
        cnf = subject.claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if jkt is not None and BINDING.get() != jkt:
            raise InvalidGrant("the subject_token is DPoP-bound: send a proof of its key")


def _held_by(subject: AccessClaims, client: Client) -> bool:
    aud = subject.audience if isinstance(subject.audience, list) else [subject.audience]
    return subject.client_id == client.client_id or client.client_id in aud


def _audiences(audiences: list[str], resources: list[str], client: Client) -> tuple[str, ...]:
    """Section 2.1: ``audience`` (a URI or a name) and ``resource`` (an absolute URI), each
    allowed by the client's policy."""
    if any(not absolute_uri(r) for r in resources):
        raise InvalidTarget("resource must be an absolute URI without a fragment")
    values = audiences + resources
    if not values:
        raise InvalidTarget("audience or resource is required")
    for value in values:
        if value not in client.token_exchange_audiences:
            raise InvalidTarget("this client may not exchange tokens for that audience")
    return tuple(dict.fromkeys(values))


def _narrowed(asked: tuple[str, ...], held: tuple[str, ...]) -> str:
    refused = [s for s in asked if s not in held]
    if refused:
        raise InvalidScope(f"scope {refused[0]!r} is not in the subject_token")
    return format_scope(asked or held)
