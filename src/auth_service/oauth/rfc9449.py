"""DPoP: sender-constrained tokens by proof of possession (RFC 9449), the OAuth face.

At the token endpoint a valid proof binds the access token to the proof's key (``cnf.jkt``,
the RFC 7638 thumbprint; ``token_type: DPoP``); a public client's refresh tokens are bound
too (section 5), so its grant keeps the key. Where the token is used (userinfo),
``Authorization: DPoP <token>`` and a proof by the same key with ``ath`` are required; a
bound token presented as ``Bearer`` is refused.

The proof checks themselves (section 4.3), the server nonces (section 8) and the ``jti``
replay check are ``security.dpop``'s, shared with the JSON API (``web.dpop``); this module
maps its neutral refusals to OAuth errors (``invalid_dpop_proof``, ``use_dpop_nonce``).
"""

from __future__ import annotations

import contextvars
from typing import Any, ClassVar

from auth_service.oauth.errors import InvalidToken, OAuthError
from auth_service.security.dpop import (
    ALGORITHMS,
    NonceRequired,
    Proof,
    ProofRefused,
    ProofVerifier,
    presented,
    same_key,
)

__all__ = ["ALGORITHMS", "BINDING", "DPoP", "Proof", "presented", "require_binding"]

# The thumbprint the access tokens issued in this context are bound to (set by the token
# endpoint around the grant; ``rfc9068`` adds it as ``cnf.jkt``).
BINDING: contextvars.ContextVar[str | None] = contextvars.ContextVar("dpop_binding", default=None)


class DPoPChallenge(OAuthError):
    """A DPoP failure; ``nonce`` is a fresh server nonce to send back (``DPoP-Nonce``)."""

    scheme: ClassVar[str] = "DPoP"

    def __init__(self, description: str = "", nonce: str | None = None) -> None:
        super().__init__(description)
        self.nonce = nonce


class InvalidDPoPProof(DPoPChallenge):
    error = "invalid_dpop_proof"


class UseDPoPNonce(DPoPChallenge):
    error = "use_dpop_nonce"


class InvalidDPoPToken(DPoPChallenge):
    """At a resource: the token or its binding is wrong (RFC 6750 ``invalid_token``)."""

    error = "invalid_token"
    status = 401


class ResourceProofError(InvalidDPoPProof):
    """A proof refused at a resource: 401 with the DPoP challenge (section 7.1)."""

    status = 401


class ResourceUseDPoPNonce(UseDPoPNonce):
    status = 401


class DPoP:
    """The proof verifier with OAuth's errors (one ``ProofVerifier`` for both faces)."""

    def __init__(self, verifier: ProofVerifier) -> None:
        self.verifier = verifier

    async def verify(
        self,
        headers: list[str],
        *,
        method: str,
        url: str,
        access_token: str | None = None,
        error: type[DPoPChallenge] = InvalidDPoPProof,
    ) -> Proof | None:
        """The proof of a request (None when it has no DPoP header). Raises ``error`` (or
        UseDPoPNonce)."""
        try:
            return await self.verifier.verify(
                headers, method=method, url=url, access_token=access_token
            )
        except NonceRequired as exc:
            refusal = ResourceUseDPoPNonce if error is ResourceProofError else UseDPoPNonce
            raise refusal(exc.reason, nonce=exc.nonce) from None
        except ProofRefused as exc:
            raise error(exc.reason) from None


def require_binding(claims: dict[str, Any], scheme: str, proof: Proof | None) -> None:
    """At a resource: a bound token only as ``DPoP`` with a proof by its key; an unbound
    token never as ``DPoP``. Raises InvalidToken."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if jkt is None:
        if scheme == "dpop":
            raise InvalidToken("the access token is not DPoP-bound: use Bearer")
        return
    if scheme != "dpop":
        raise InvalidDPoPToken("the access token is DPoP-bound: use the DPoP scheme and a proof")
    if proof is None:
        raise ResourceProofError("a DPoP proof is required")
    if not same_key(proof.jkt, str(jkt)):
        raise InvalidDPoPToken("the DPoP proof is not by the key the token is bound to")
