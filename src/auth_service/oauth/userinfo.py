"""The UserInfo endpoint (OpenID Connect Core section 5.3), GET and POST.

The access token comes in the Authorization header, or as ``access_token`` in a form body
(RFC 6750 section 2.2), never in the query. It must be one of ours, unexpired, unrevoked,
carry ``openid``, and its grant and user must still be live. Claims follow the granted
scopes (section 5.4); errors are RFC 6750 section 3 challenges.
"""

from __future__ import annotations

from typing import Any

from auth_service.accounts.identity import Identity
from auth_service.oauth import jose
from auth_service.oauth.errors import InsufficientScope, InvalidRequest, InvalidToken
from auth_service.oauth.rfc7009 import RevokedAccessTokens
from auth_service.oauth.rfc9068 import AccessClaims, AccessTokens
from auth_service.oauth.scopes import OPENID, claims_for
from auth_service.sessions.errors import SessionNotFound
from auth_service.sessions.service import SessionService


def bearer_token(authorization: str | None, body_token: str | None) -> str:
    """The one bearer token of the request (RFC 6750 section 2: one method only)."""
    header_token = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise InvalidToken("use the Bearer scheme")
        header_token = value.strip()
    if header_token and body_token:
        raise InvalidRequest("send the access token once")
    token = header_token or body_token
    if not token:
        raise InvalidToken("")  # no token: a bare challenge (RFC 6750 section 3.1)
    return token


def _claims(identity: Identity, subject: str, scopes: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": identity.name,
        "locale": identity.locale,
        "email": identity.email,
        "email_verified": identity.email_verified_at is not None,
    }
    # The access token's sub: the one this client sees (public or pairwise, OIDC Core 8).
    body: dict[str, Any] = {"sub": subject}
    for claim in claims_for(scopes):
        if values.get(claim) is not None:
            body[claim] = values[claim]
    return body


class UserInfo:
    def __init__(
        self,
        access: AccessTokens,
        revoked: RevokedAccessTokens,
        sessions: SessionService,
        leeway: int,
    ) -> None:
        self._access = access
        self._revoked = revoked
        self._sessions = sessions
        self.leeway = leeway

    async def claims(self, token: str, verified: AccessClaims | None = None) -> dict[str, Any]:
        """The user's claims for the token's scopes (``verified``: the token's claims when
        the caller verified it already). Raises InvalidToken, InsufficientScope."""
        try:
            access = verified or await self._access.verify(token, self.leeway)
        except jose.JoseError:
            raise InvalidToken("the access token is invalid or expired") from None
        if access.grant_id is None:
            raise InvalidToken("the access token has no user")
        if await self._revoked.revoked(access.jti):
            raise InvalidToken("the access token is revoked")
        if OPENID not in access.scopes:
            raise InsufficientScope("the openid scope is required")
        try:
            identity = await self._sessions.active_identity(access.grant_id, access.user_id)
        except SessionNotFound:
            raise InvalidToken("the grant of this access token has ended") from None
        return _claims(identity, access.subject, access.scopes)
