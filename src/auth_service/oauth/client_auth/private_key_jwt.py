"""``private_key_jwt`` (RFC 7523 section 2.2 and 3, OIDC Core section 9): the client signs a
short-lived JWT with a key whose public half it registered (``jwks`` or ``jwks_uri``).

Checks, in order, all answered ``invalid_client``: the assertion type; size and form; an
asymmetric ``alg`` of the allow-list (``HS256`` and ``none`` never: a public key is no
HMAC secret); no key material or key location in the header; ``iss`` = ``sub`` = a client
registered for this method; a registered key fitting ``kid`` and ``alg``; the signature;
``aud`` the issuer (one value; the token endpoint URL also, unless
``oauth.client_assertion_legacy_audiences`` is off: ADR 0730); ``exp`` in the future and at
most ``MAX_LIFETIME`` away; ``iat``, when present, not in the future and not older than
``MAX_AGE``; ``nbf``; then the ``jti`` is spent (``oauth.replay``: a second use is refused by
every worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt

from auth_service.oauth import jose
from auth_service.oauth.client_keys import ClientKeys, KeysUnavailable
from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.errors import InvalidClient
from auth_service.oauth.replay import SeenOnce
from auth_service.oauth.request import EndpointRequest

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
MAX_LIFETIME = 300  # exp at most this far ahead
MAX_AGE = 300  # iat at most this old
MAX_JTI = 256


class PrivateKeyJwt:
    name = "private_key_jwt"

    def __init__(
        self,
        keys: ClientKeys,
        seen: SeenOnce,
        audiences: Callable[[], frozenset[str]],
        leeway: Callable[[], int],
    ) -> None:
        self._keys = keys
        self._seen = seen
        self._audiences = audiences
        self._leeway = leeway

    def presented(self, request: EndpointRequest) -> bool:
        params = request.params
        return (
            params.get("client_assertion") is not None
            or params.get("client_assertion_type") is not None
        )

    async def authenticate(self, request: EndpointRequest, clients: ClientService) -> Client:
        params = request.params
        if params.get("client_assertion_type") != ASSERTION_TYPE:
            raise InvalidClient(f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = params.get("client_assertion")
        if assertion is None:
            raise InvalidClient("client_assertion is required")
        try:
            header = jose.unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except (jose.JoseError, jwt.PyJWTError):
            raise InvalidClient("the client assertion is malformed") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise InvalidClient(
                "the client assertion's alg must be one of " + ", ".join(ALGORITHMS)
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidClient("the client assertion's kid must be a string")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer != unverified.get("sub"):
            raise InvalidClient("the client assertion's iss and sub must be the client_id")
        client = await clients.find(issuer)
        if client is None or client.token_endpoint_auth_method != self.name:
            raise InvalidClient("client authentication failed")
        claims = await self._verified(assertion, client, kid, str(alg))
        await self._spend(claims, client)
        return client

    async def _verified(
        self, assertion: str, client: Client, kid: str | None, alg: str
    ) -> dict[str, Any]:
        try:
            keys = await self._keys.candidates(client, kid, alg)
        except KeysUnavailable:
            raise InvalidClient("the client's keys are not available") from None
        if not keys:
            raise InvalidClient("no registered key of the client fits the assertion's kid and alg")
        leeway = self._leeway()
        for key in keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    assertion,
                    key,
                    algorithms=[alg],
                    leeway=leeway,
                    options={"require": ["iss", "sub", "aud", "exp", "jti"], "verify_aud": False},
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError:
                raise InvalidClient("the client assertion has expired") from None
            except jwt.ImmatureSignatureError:
                raise InvalidClient("the client assertion is not valid yet") from None
            except jwt.PyJWTError as exc:
                raise InvalidClient(
                    f"the client assertion is invalid ({type(exc).__name__})"
                ) from None
            self._check_claims(claims, leeway)
            return claims
        raise InvalidClient("the client assertion's signature does not verify")

    def _check_claims(self, claims: dict[str, Any], leeway: int) -> None:
        aud = claims["aud"]
        if isinstance(aud, list):
            # One audience only: a JWT for several servers could be replayed at each.
            aud = aud[0] if len(aud) == 1 else None
        if not isinstance(aud, str) or aud not in self._audiences():
            raise InvalidClient("the client assertion's aud must be the issuer")
        now = time.time()
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp - now > MAX_LIFETIME + leeway:
            raise InvalidClient(f"the client assertion may live at most {MAX_LIFETIME} s")
        iat = claims.get("iat")
        if iat is not None and (not isinstance(iat, int | float) or now - iat > MAX_AGE + leeway):
            raise InvalidClient(f"the client assertion was issued more than {MAX_AGE} s ago")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
            raise InvalidClient("the client assertion needs a jti")

    async def _spend(self, claims: dict[str, Any], client: Client) -> None:
        until = datetime.fromtimestamp(float(claims["exp"]) + self._leeway(), UTC)
        first = await self._seen.first_use(
            "client_assertion",
            client.client_id,
            claims["jti"],
            until=until,
            tenant_id=client.tenant_id,
        )
        if not first:
            raise InvalidClient("the client assertion was already used")
