"""A DPoP client (RFC 9449): its own EC key pair and the proofs it signs (the client side,
so PyJWT and cryptography sign here; the service verifies with its own code)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.api import Api


class Holder:
    """A client's DPoP key pair and the proofs it makes."""

    def __init__(self, api: Api | str) -> None:
        """For the in-process ``api`` or a live server at the URL ``api``."""
        self.issuer = api if isinstance(api, str) else api.services.oauth.issuer
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.jwk: dict[str, Any] = json.loads(
            jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key())
        )

    @property
    def jkt(self) -> str:
        members = {k: self.jwk[k] for k in ("crv", "kty", "x", "y")}
        canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()

    def proof(
        self,
        path: str,
        method: str = "POST",
        *,
        token: str | None = None,
        headers: dict[str, Any] | None = None,
        **change: Any,
    ) -> str:
        claims: dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "htm": method,
            "htu": self.issuer + path,
            "iat": int(time.time()),
        }
        if token is not None:
            digest = hashlib.sha256(token.encode()).digest()
            claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        claims.update(change)
        head = {"typ": "dpop+jwt", "jwk": self.jwk, **(headers or {})}
        return jwt.encode(claims, self.private, algorithm="ES256", headers=head)

    def headers(self, path: str, token: str, method: str = "GET", **change: Any) -> dict[str, str]:
        """A request's ``Authorization: DPoP`` and its proof (``ath`` of ``token``)."""
        return {
            "Authorization": f"DPoP {token}",
            "DPoP": self.proof(path, method, token=token, **change),
        }
