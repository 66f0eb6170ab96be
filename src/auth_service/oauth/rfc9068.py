"""JWT access tokens (RFC 9068), signed with the access tokens' algorithm (ES256 by default).

``typ`` is ``at+jwt`` (section 2.1) so no other JWT of ours passes as an access token. The
audience is the requested resources (RFC 8707) or else the client. With a user: ``sub`` is
the user, and ``auth_time``, ``acr``, ``amr`` (section 2.2.1) and ``sid`` (the grant, whose
revocation ends the token at introspection and userinfo) are added; without one
(client_credentials), ``sub`` is the client (section 2.2).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auth_service.keys.service import KeyService
from auth_service.oauth import jose
from auth_service.oauth.rfc9449 import BINDING

TYP = "at+jwt"


@dataclass(frozen=True)
class UserFacts:
    """The user and authentication an access or ID token speaks for."""

    user_id: uuid.UUID
    auth_time: datetime
    acr: str | None
    amr: tuple[str, ...]
    grant_id: uuid.UUID
    # The sub the client sees (OIDC Core 8, ``oauth.subjects``); None: the user's id.
    subject: str | None = None

    @property
    def sub(self) -> str:
        return self.subject if self.subject is not None else str(self.user_id)


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int
    jti: str


@dataclass(frozen=True)
class AccessClaims:
    """A verified access token of ours."""

    client_id: str
    subject: str
    scopes: tuple[str, ...]
    jti: str
    expires_at: int
    issued_at: int
    audience: str | list[str]
    grant_id: uuid.UUID | None
    claims: dict[str, Any]

    @property
    def user_id(self) -> uuid.UUID | None:
        """The user's id when ``sub`` is it (a public subject); a pairwise ``sub`` is not:
        then the grant (``grant_id``) says who the user is."""
        if self.grant_id is None:
            return None
        try:
            return uuid.UUID(self.subject)
        except ValueError:
            return None


def audience(resources: tuple[str, ...], client_id: str) -> str | list[str]:
    if not resources:
        return client_id
    return resources[0] if len(resources) == 1 else list(resources)


class AccessTokens:
    def __init__(self, keys: KeyService, issuer: str) -> None:
        self._keys = keys
        self.issuer = issuer

    async def issue(
        self,
        *,
        client_id: str,
        scope: str,
        resources: tuple[str, ...],
        ttl: int,
        user: UserFacts | None,
        subject: str | None = None,
        act: dict[str, Any] | None = None,
    ) -> AccessToken:
        """``subject`` and ``act``: a delegated token (RFC 8693 section 4.1), which speaks
        for ``subject`` without a grant of its own (no ``user``)."""
        now = int(time.time())
        jti = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.sub if user else subject or client_id,
            "aud": audience(resources, client_id),
            "exp": now + ttl,
            "iat": now,
            "jti": jti,
            "client_id": client_id,
            "scope": scope,
        }
        if act is not None:
            claims["act"] = act
        jkt = BINDING.get()
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}  # RFC 9449 section 6: bound to a DPoP key
        if user is not None:
            claims["auth_time"] = int(user.auth_time.timestamp())
            claims["sid"] = str(user.grant_id)
            if user.acr:
                claims["acr"] = user.acr
            if user.amr:
                claims["amr"] = list(user.amr)
        token = await jose.sign(self._keys, claims, algorithm=None, typ=TYP)
        return AccessToken(token, ttl, jti)

    async def verify(self, token: str, leeway: int) -> AccessClaims:
        """One of our unexpired access tokens (signature, ``typ``, issuer, claims), or
        JoseError. Whether it is still active (grant, revocation) is the caller's check."""
        claims = await jose.verify(
            self._keys,
            token,
            issuer=self.issuer,
            typ=TYP,
            leeway=leeway,
            required=("iss", "sub", "exp", "iat", "jti", "client_id", "aud"),
        )
        try:
            sid = claims.get("sid")
            scope = claims.get("scope", "")
            if not isinstance(scope, str):
                raise jose.JoseError("bad scope claim")
            return AccessClaims(
                client_id=str(claims["client_id"]),
                subject=str(claims["sub"]),
                scopes=tuple(scope.split()),
                jti=str(claims["jti"]),
                expires_at=int(claims["exp"]),
                issued_at=int(claims["iat"]),
                audience=claims["aud"],
                grant_id=uuid.UUID(sid) if isinstance(sid, str) else None,
                claims=claims,
            )
        except (ValueError, TypeError):
            raise jose.JoseError("bad claims") from None
