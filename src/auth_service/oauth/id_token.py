"""ID tokens (OpenID Connect Core section 2), and reading them back as ``id_token_hint``.

Signed with the algorithm the client registered (``id_token_signed_response_alg``, RS256 by
default: the algorithm every relying party must support, OIDC Core section 15.1). ``nonce``
is present only when the authorization request carried one, never as null (section 3.1.3.7
has the client compare it when present). ``auth_time``, ``acr``, ``amr`` say how the user
signed in; ``sid`` is the browser session (OIDC Front-Channel Logout section 3);
``at_hash`` binds the access token issued beside it (section 3.1.3.6).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from auth_service.keys.service import KeyService
from auth_service.oauth import jose
from auth_service.oauth.rfc9068 import UserFacts

TYP = "JWT"


@dataclass(frozen=True)
class IdTokenHint:
    """A verified ``id_token_hint`` (expired ones included, OIDC RP-Initiated Logout 2)."""

    subject: str
    client_id: str
    session_id: uuid.UUID | None


class IdTokens:
    def __init__(self, keys: KeyService, issuer: str) -> None:
        self._keys = keys
        self.issuer = issuer

    async def issue(
        self,
        *,
        client_id: str,
        algorithm: str,
        user: UserFacts,
        ttl: int,
        nonce: str | None,
        browser_session_id: uuid.UUID | None,
        access_token: str | None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.sub,
            "aud": client_id,
            "exp": now + ttl,
            "iat": now,
            "auth_time": int(user.auth_time.timestamp()),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if user.acr:
            claims["acr"] = user.acr
        if user.amr:
            claims["amr"] = list(user.amr)
        if browser_session_id is not None:
            claims["sid"] = str(browser_session_id)
        if access_token is not None:
            claims["at_hash"] = jose.half_hash(access_token, algorithm)
        return await jose.sign(self._keys, claims, algorithm=algorithm, typ=TYP)

    async def read_hint(self, token: str) -> IdTokenHint:
        """An ID token we issued (signature and issuer checked; expiry not: a hint may have
        expired, section 2 of RP-Initiated Logout). Raises jose.JoseError."""
        claims = await jose.verify(
            self._keys,
            token,
            issuer=self.issuer,
            typ=None,
            leeway=0,
            verify_exp=False,
            required=("iss", "sub", "aud", "iat"),
        )
        aud = claims["aud"]
        if isinstance(aud, list):
            if len(aud) != 1:
                raise jose.JoseError("an ID token of one client is expected")
            aud = aud[0]
        sid = claims.get("sid")
        try:
            session_id = uuid.UUID(sid) if isinstance(sid, str) else None
        except ValueError:
            raise jose.JoseError("bad sid") from None
        return IdTokenHint(str(claims["sub"]), str(aud), session_id)
