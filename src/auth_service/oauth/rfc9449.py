"""DPoP: sender-constrained tokens by proof of possession (RFC 9449).

A client sends a ``DPoP`` header, a JWT signed by a key pair of its own whose public half
is in the header (``jwk``). At the token endpoint a valid proof binds the access token to
that key (``cnf.jkt``, the RFC 7638 thumbprint; ``token_type: DPoP``); a public client's
refresh tokens are bound too (section 5), so its grant keeps the key. Where the token is
used (userinfo), ``Authorization: DPoP <token>`` and a proof by the same key with ``ath``
are required; a bound token presented as ``Bearer`` is refused.

Proof checks (section 4.3): one ``DPoP`` header; ``typ`` ``dpop+jwt``; an asymmetric
``alg`` of ``ALGORITHMS``; a public ``jwk`` and nothing else about keys; the signature by
that key; ``htm`` the request's method and ``htu`` its URL (no query or fragment); ``iat``
at most ``MAX_AGE`` old and not in the future (leeway ``tokens.clock_skew_seconds``);
``jti`` used once by that key (``oauth.replay``, shared by every worker); ``ath`` when a
token is presented; and, with ``oauth.dpop_nonce`` on, a ``nonce`` this server issued
(section 8: ``use_dpop_nonce`` with a fresh ``DPoP-Nonce`` header otherwise).

Nonces are stateless: the current time window and its HMAC under a key derived from the
master key, so every worker accepts every worker's nonce; one stays valid for two windows.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import jwt

from auth_service.config.settings import Settings
from auth_service.oauth.errors import InvalidToken, OAuthError
from auth_service.oauth.jwk_sets import PRIVATE_MEMBERS
from auth_service.oauth.replay import SeenOnce

ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "PS256", "RS384", "PS384", "EdDSA")
TYP = "dpop+jwt"
MAX_AGE = 300
MAX_PROOF = 8192
NONCE_WINDOW = 300
# The thumbprint the access tokens issued in this context are bound to (set by the token
# endpoint around the grant; ``rfc9068`` adds it as ``cnf.jkt``).
BINDING: contextvars.ContextVar[str | None] = contextvars.ContextVar("dpop_binding", default=None)
# RFC 7638 section 3.2: the required members of each key type, in lexicographic order.
THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}


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


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: the SHA-256 of the key's required members as compact, sorted JSON."""
    members = THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or not all(isinstance(jwk.get(m), str) for m in members):
        raise ValueError("unsupported key")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


def access_token_hash(token: str) -> str:
    """Section 4.2 ``ath``: base64url SHA-256 of the access token's ASCII."""
    return _b64(hashlib.sha256(token.encode()).digest())


def _plain_url(url: str) -> str:
    """Section 4.3 item 9: the URL without query and fragment (scheme and host lowered)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", "", ""))


@dataclass(frozen=True)
class Proof:
    jkt: str


class Nonces:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, window: int) -> str:
        digest = hmac.new(self._key, window.to_bytes(8, "big"), hashlib.sha256).digest()
        return _b64(digest[:16])

    def issue(self) -> str:
        window = int(time.time()) // NONCE_WINDOW
        return f"{window}.{self._mac(window)}"

    def valid(self, nonce: object) -> bool:
        if not isinstance(nonce, str) or len(nonce) > 64 or "." not in nonce:
            return False
        raw, mac = nonce.split(".", 1)
        if not raw.isdigit():
            return False
        window = int(raw)
        now = int(time.time()) // NONCE_WINDOW
        return now - 1 <= window <= now and hmac.compare_digest(mac, self._mac(window))


class DPoP:
    def __init__(
        self,
        seen: SeenOnce,
        settings: Callable[[], Settings],
        nonce_key: bytes | None,
        tenant_id: Callable[[], uuid.UUID],
    ) -> None:
        self._seen = seen
        self._settings = settings
        self._tenant_id = tenant_id
        self.nonces = Nonces(nonce_key or secrets.token_bytes(32))

    @property
    def nonce_required(self) -> bool:
        return self._settings().oauth.dpop_nonce

    def fresh_nonce(self) -> str | None:
        return self.nonces.issue() if self.nonce_required else None

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
        if not headers:
            return None
        if len(headers) > 1:
            raise error("send one DPoP header")
        proof = headers[0].strip()
        if len(proof) > MAX_PROOF or proof.count(".") != 2:
            raise error("the DPoP proof is malformed")
        try:
            header = jwt.get_unverified_header(proof)
        except jwt.PyJWTError:
            raise error("the DPoP proof is malformed") from None
        jwk = self._check_header(header, error)
        alg = str(header["alg"])
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
            claims: dict[str, Any] = jwt.decode(
                proof,
                key,
                algorithms=[alg],
                options={
                    "require": ["jti", "htm", "htu", "iat"],
                    "verify_aud": False,
                    "verify_iat": False,  # checked below, with our window
                },
            )
        except jwt.PyJWTError as exc:
            raise error(f"the DPoP proof does not verify ({type(exc).__name__})") from None
        jkt = thumbprint(jwk)
        self._check_claims(claims, method, url, access_token, error)
        await self._spend(claims, jkt, error)
        return Proof(jkt)

    @staticmethod
    def _check_header(header: dict[str, Any], error: type[DPoPChallenge]) -> dict[str, Any]:
        if header.get("typ") != TYP:
            raise error(f"the DPoP proof's typ must be {TYP}")
        if header.get("alg") not in ALGORITHMS:
            raise error("the DPoP proof's alg must be one of " + ", ".join(ALGORITHMS))
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or PRIVATE_MEMBERS.intersection(jwk):
            raise error("the DPoP proof needs a public jwk")
        if {"jku", "x5u", "x5c", "kid", "crit"}.intersection(header):
            raise error("the DPoP proof names its key by jwk only")
        try:
            thumbprint(jwk)
        except ValueError:
            raise error("the DPoP proof's jwk is not an EC, RSA or OKP key") from None
        return jwk

    def _check_claims(
        self,
        claims: dict[str, Any],
        method: str,
        url: str,
        access_token: str | None,
        error: type[DPoPChallenge],
    ) -> None:
        if claims.get("htm") != method:
            raise error("the DPoP proof's htm is not this request's method")
        htu = claims.get("htu")
        if not isinstance(htu, str) or _plain_url(htu) != _plain_url(url):
            raise error("the DPoP proof's htu is not this request's URL")
        leeway = self._settings().tokens.clock_skew_seconds
        iat, now = claims.get("iat"), time.time()
        if not isinstance(iat, int | float) or iat > now + leeway or now - iat > MAX_AGE + leeway:
            raise error("the DPoP proof's iat is outside the accepted window")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise error("the DPoP proof needs a jti")
        if access_token is not None and claims.get("ath") != access_token_hash(access_token):
            raise error("the DPoP proof's ath does not match the access token")
        if self.nonce_required and not self.nonces.valid(claims.get("nonce")):
            refusal = ResourceUseDPoPNonce if error is ResourceProofError else UseDPoPNonce
            raise refusal("a DPoP nonce is required", nonce=self.nonces.issue())

    async def _spend(self, claims: dict[str, Any], jkt: str, error: type[DPoPChallenge]) -> None:
        leeway = self._settings().tokens.clock_skew_seconds
        until = datetime.fromtimestamp(float(claims["iat"]) + MAX_AGE + 2 * leeway, UTC)
        first = await self._seen.first_use(
            "dpop", jkt, str(claims["jti"]), until=until, tenant_id=self._tenant_id()
        )
        if not first:
            raise error("the DPoP proof was already used")


def presented(authorization: str | None) -> tuple[str, str] | None:
    """(scheme, token) of an ``Authorization: Bearer|DPoP <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() not in ("bearer", "dpop") or not value.strip():
        return None
    return scheme.lower(), value.strip()


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
    if not hmac.compare_digest(proof.jkt, str(jkt)):
        raise InvalidDPoPToken("the DPoP proof is not by the key the token is bound to")
