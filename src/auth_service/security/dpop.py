"""DPoP proof verification (RFC 9449 section 4.3): the one implementation behind both faces,
the OAuth provider's (``oauth.rfc9449``: OAuth error codes) and the JSON API's
(``web.dpop``: problem+json).

A client sends a ``DPoP`` header, a JWT signed by a key pair of its own whose public half
is in the header (``jwk``). Checks: one ``DPoP`` header; ``typ`` ``dpop+jwt``; an asymmetric
``alg`` of ``ALGORITHMS``; a public ``jwk`` and nothing else about keys; the signature by
that key; ``htm`` the request's method and ``htu`` its URL (no query or fragment); ``iat``
at most ``MAX_AGE`` old and not in the future (leeway ``tokens.clock_skew_seconds``);
``jti`` used once by that key (a ``ReplayStore`` shared by every worker); ``ath`` when a
token is presented; and, with ``oauth.dpop_nonce`` on, a ``nonce`` this server issued
(section 8). Failures raise ``ProofRefused`` or ``NonceRequired``, which know nothing of
OAuth or HTTP: each face maps them to its own answer.

Nonces are stateless: the current time window and its HMAC under a key derived from the
master key, so every worker accepts every worker's nonce; one stays valid for two windows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import jwt

from auth_service.config.settings import Settings

ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "PS256", "RS384", "PS384", "EdDSA")
TYP = "dpop+jwt"
MAX_AGE = 300
MAX_PROOF = 8192
NONCE_WINDOW = 300
# RFC 7517/7518: the members that make a JWK private (or symmetric).
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 7638 section 3.2: the required members of each key type, in lexicographic order.
THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}


class ProofRefused(Exception):
    """The request's DPoP proof is not acceptable; ``reason`` says why (safe to send)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NonceRequired(ProofRefused):
    """The proof lacks a valid server nonce (section 8); ``nonce`` is a fresh one."""

    def __init__(self, reason: str, nonce: str) -> None:
        super().__init__(reason)
        self.nonce = nonce


class ReplayStore(Protocol):
    """Where a proof's ``jti`` is spent, shared by every worker (``oauth.replay.SeenOnce``)."""

    async def first_use(
        self, purpose: str, issuer: str, jti: str, *, until: datetime, tenant_id: uuid.UUID
    ) -> bool: ...


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


def same_key(proof_jkt: str, bound_jkt: str) -> bool:
    """Whether a proof's key is the one a token or session is bound to (constant time)."""
    return hmac.compare_digest(proof_jkt.encode(), bound_jkt.encode())


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


class ProofVerifier:
    def __init__(
        self,
        seen: ReplayStore,
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
        self, headers: list[str], *, method: str, url: str, access_token: str | None = None
    ) -> Proof | None:
        """The proof of a request (None when it has no DPoP header). Raises ProofRefused
        (NonceRequired when only the server nonce is missing or stale)."""
        if not headers:
            return None
        if len(headers) > 1:
            raise ProofRefused("send one DPoP header")
        proof = headers[0].strip()
        if len(proof) > MAX_PROOF or proof.count(".") != 2:
            raise ProofRefused("the DPoP proof is malformed")
        try:
            header = jwt.get_unverified_header(proof)
        except jwt.PyJWTError:
            raise ProofRefused("the DPoP proof is malformed") from None
        jwk = self._check_header(header)
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
            raise ProofRefused(f"the DPoP proof does not verify ({type(exc).__name__})") from None
        jkt = thumbprint(jwk)
        self._check_claims(claims, method, url, access_token)
        await self._spend(claims, jkt)
        return Proof(jkt)

    @staticmethod
    def _check_header(header: dict[str, Any]) -> dict[str, Any]:
        if header.get("typ") != TYP:
            raise ProofRefused(f"the DPoP proof's typ must be {TYP}")
        if header.get("alg") not in ALGORITHMS:
            raise ProofRefused("the DPoP proof's alg must be one of " + ", ".join(ALGORITHMS))
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or PRIVATE_JWK_MEMBERS.intersection(jwk):
            raise ProofRefused("the DPoP proof needs a public jwk")
        if {"jku", "x5u", "x5c", "kid", "crit"}.intersection(header):
            raise ProofRefused("the DPoP proof names its key by jwk only")
        try:
            thumbprint(jwk)
        except ValueError:
            raise ProofRefused("the DPoP proof's jwk is not an EC, RSA or OKP key") from None
        return jwk

    def _check_claims(
        self, claims: dict[str, Any], method: str, url: str, access_token: str | None
    ) -> None:
        if claims.get("htm") != method:
            raise ProofRefused("the DPoP proof's htm is not this request's method")
        htu = claims.get("htu")
        if not isinstance(htu, str) or _plain_url(htu) != _plain_url(url):
            raise ProofRefused("the DPoP proof's htu is not this request's URL")
        leeway = self._settings().tokens.clock_skew_seconds
        iat, now = claims.get("iat"), time.time()
        if not isinstance(iat, int | float) or iat > now + leeway or now - iat > MAX_AGE + leeway:
            raise ProofRefused("the DPoP proof's iat is outside the accepted window")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise ProofRefused("the DPoP proof needs a jti")
        if access_token is not None and claims.get("ath") != access_token_hash(access_token):
            raise ProofRefused("the DPoP proof's ath does not match the access token")
        if self.nonce_required and not self.nonces.valid(claims.get("nonce")):
            raise NonceRequired("a DPoP nonce is required", self.nonces.issue())

    async def _spend(self, claims: dict[str, Any], jkt: str) -> None:
        leeway = self._settings().tokens.clock_skew_seconds
        until = datetime.fromtimestamp(float(claims["iat"]) + MAX_AGE + 2 * leeway, UTC)
        first = await self._seen.first_use(
            "dpop", jkt, str(claims["jti"]), until=until, tenant_id=self._tenant_id()
        )
        if not first:
            raise ProofRefused("the DPoP proof was already used")


def presented(authorization: str | None) -> tuple[str, str] | None:
    """(scheme, token) of an ``Authorization: Bearer|DPoP <token>`` header, else None;
    the scheme lower-cased (RFC 9110 section 11.1: schemes are case-insensitive)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() not in ("bearer", "dpop") or not value.strip():
        return None
    return scheme.lower(), value.strip()
