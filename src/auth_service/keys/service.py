"""Signing keys: generation, encryption at rest, rotation, JWKS (RFC 7517).

Lifecycle: ``next`` (published in the JWKS, not signing) -> ``active`` (signing) -> ``retired``
(still published until every token it signed has expired) -> deleted. A rotation promotes the
published ``next`` key, so relying parties have seen it before its first token.

Each signing algorithm has its own keys and lifecycle (ADR 0702): access tokens sign with
``tokens.algorithm``; ID tokens with the algorithm their client registered (RS256 unless it
chose another of ``oauth.id_token_signing_alg_values``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from sqlalchemy import delete, select

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.config.settings import SigningAlgorithm, TokenSettings
from auth_service.db.base import DEFAULT_TENANT_ID, utcnow
from auth_service.db.engine import Database
from auth_service.keys.errors import NoActiveKey
from auth_service.keys.models import SigningKey
from auth_service.security.aead import MasterKey

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}


def _generate(algorithm: SigningAlgorithm) -> PrivateKey:
    if algorithm is SigningAlgorithm.ES256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm is SigningAlgorithm.RS256:
        # 2048 bits: what relying parties expect of RS256 ID tokens, and a twelfth of the
        # generation time and a third of the signing time of 3072 (ADR 0702).
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()


def _public_jwk(public: PublicKey) -> dict[str, Any]:
    if isinstance(public, ec.EllipticCurvePublicKey):
        return dict(ECAlgorithm.to_jwk(public, as_dict=True))
    if isinstance(public, rsa.RSAPublicKey):
        return dict(RSAAlgorithm.to_jwk(public, as_dict=True))
    return dict(OKPAlgorithm.to_jwk(public, as_dict=True))


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url), used as the ``kid``."""
    members = {k: jwk[k] for k in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def _load_public(jwk: dict[str, Any]) -> PublicKey:
    data = json.dumps(jwk)
    kty = jwk["kty"]
    key: Any
    if kty == "EC":
        key = ECAlgorithm.from_jwk(data)
    elif kty == "RSA":
        key = RSAAlgorithm.from_jwk(data)
    else:
        key = OKPAlgorithm.from_jwk(data)
    assert isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey)
    return key


class KeyStatus(StrEnum):
    """A key's place in the lifecycle (see the module docstring)."""

    next = "next"
    active = "active"
    retired = "retired"


@dataclass(frozen=True)
class PublishedKey:
    kid: str
    algorithm: str
    status: str
    jwk: dict[str, Any]
    public_key: PublicKey


@dataclass(frozen=True)
class ActiveSigner:
    kid: str
    algorithm: str
    private_key: PrivateKey


@dataclass(frozen=True)
class JwksDocument:
    """The JWKS as served: serialised once per key reload, with a strong ETag of its bytes."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, keys: list[dict[str, Any]]) -> JwksDocument:
        body = json.dumps({"keys": keys}, separators=(",", ":")).encode()
        return cls(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    algorithm: str
    status: str
    created_at: str
    activated_at: str | None
    publish_until: str | None


class KeyService:
    def __init__(
        self,
        db: Database,
        master_key: MasterKey,
        settings: TokenSettings,
        audit: AuditService,
        algorithms: Sequence[SigningAlgorithm] = (),
    ) -> None:
        """``algorithms``: those signing besides ``settings.algorithm`` (ID tokens)."""
        self._db = db
        self._audit = audit
        self._master = master_key
        self._settings = settings
        self.algorithms = tuple(dict.fromkeys((settings.algorithm, *algorithms)))
        self._published: dict[str, PublishedKey] = {}
        self._signers: dict[str, ActiveSigner] = {}
        self._document = JwksDocument.of([])
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    def apply_settings(self, settings: TokenSettings) -> None:
        """Hot reload of cache period and retirement window (the algorithm needs a restart)."""
        self._settings = settings

    async def _new_row(self, status: KeyStatus, algorithm: SigningAlgorithm) -> SigningKey:
        # In a thread: an RSA key takes tens of milliseconds (more under load), which the
        # event loop must not wait through.
        private = await asyncio.to_thread(_generate, algorithm)
        jwk = _public_jwk(private.public_key())
        kid = jwk_thumbprint(jwk)
        jwk.update(kid=kid, alg=algorithm.value, use="sig")
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        now = utcnow()
        return SigningKey(
            id=uuid.uuid4(),
            tenant_id=DEFAULT_TENANT_ID,
            kid=kid,
            algorithm=algorithm.value,
            status=status,
            public_jwk=jwk,
            private_key_encrypted=self._master.seal(pem, kid.encode()),
            master_key_id=self._master.key_id,
            created_at=now,
            activated_at=now if status is KeyStatus.active else None,
        )

    async def ensure_keys(self) -> None:
        """Create the active and next keys of each algorithm when missing (first start, a
        newly configured algorithm, or after a purge)."""
        wanted = [
            (a, status) for a in self.algorithms for status in (KeyStatus.active, KeyStatus.next)
        ]
        missing = [w for w in wanted if (w[0].value, w[1]) not in await self._present()]
        if missing:
            # Generated before the transaction, so it holds no lock while keys are made.
            rows = [await self._new_row(status, algorithm) for algorithm, status in missing]
            async with self._db.transaction() as s:
                present = await self._present(s)
                s.add_all(r for r in rows if (r.algorithm, KeyStatus(r.status)) not in present)
        await self.reload()

    async def _present(self, s: Any = None) -> set[tuple[str, KeyStatus]]:
        """(algorithm, status) of the active and next keys."""
        query = select(SigningKey.algorithm, SigningKey.status).where(
            SigningKey.status.in_((KeyStatus.active.value, KeyStatus.next.value))
        )
        if s is not None:
            rows = (await s.execute(query)).all()
        else:
            async with self._db.sessionmaker() as session:
                rows = (await session.execute(query)).all()
        return {(r.algorithm, KeyStatus(r.status)) for r in rows}

    async def rotate(self, ctx: RequestContext, algorithm: SigningAlgorithm | None = None) -> str:
        """Rotate the keys of ``algorithm`` (default: every algorithm): promote ``next`` to
        ``active``, retire the old active key, publish a new ``next``; audited once as
        ``keys.rotated`` on behalf of ``ctx``. Returns the kid that now signs access tokens
        (or, for one other algorithm, that algorithm's tokens)."""
        chosen = (algorithm,) if algorithm is not None else self.algorithms
        kids = {alg.value: await self._rotate_one(alg) for alg in chosen}
        await self.reload()
        kid = kids.get(self._settings.algorithm.value) or next(iter(kids.values()))
        await self._audit.record(events.KEYS_ROTATED, ctx, details={"kid": kid, "kids": kids})
        return kid

    async def _rotate_one(self, algorithm: SigningAlgorithm) -> str:
        next_key = await self._new_row(KeyStatus.next, algorithm)
        now = utcnow()
        # Every token the old key signed must stay verifiable: its lifetime, the leeway we
        # grant on exp, and the time other workers keep signing with it until they reload.
        keep = timedelta(
            seconds=self._settings.access_token_ttl_seconds
            + 2 * self._settings.clock_skew_seconds
            + self._settings.key_cache_seconds
        )
        async with self._db.transaction() as s:
            rows = (
                await s.scalars(
                    select(SigningKey)
                    .where(SigningKey.algorithm == algorithm.value)
                    .with_for_update()
                )
            ).all()
            by_status: dict[KeyStatus, list[SigningKey]] = {}
            for row in rows:
                by_status.setdefault(KeyStatus(row.status), []).append(row)
            for old in by_status.get(KeyStatus.active, []):
                old.status = KeyStatus.retired
                old.retired_at = now
                old.publish_until = now + keep
            promoted = by_status.get(KeyStatus.next, [])
            if promoted:
                new_active = promoted[0]
                for extra in promoted[1:]:
                    extra.status = KeyStatus.retired
                    extra.retired_at = now
                    extra.publish_until = now
            else:
                new_active = await self._new_row(KeyStatus.active, algorithm)
                s.add(new_active)
            new_active.status = KeyStatus.active
            new_active.activated_at = now
            s.add(next_key)
            await s.execute(
                delete(SigningKey).where(
                    SigningKey.status == KeyStatus.retired.value, SigningKey.publish_until < now
                )
            )
            return new_active.kid

    async def reload(self, *, coalesce: bool = False) -> None:
        """Re-read keys from the database (other workers and replicas may have rotated).

        ``coalesce``: a read that another task finished while this one waited for the lock
        is enough (the periodic re-read and the unknown-``kid`` one): concurrent callers
        share one read instead of queueing for one each. After a write of this process
        (rotation, ensure) the caller needs a read that began after it: the default."""
        seen = self._loaded_at
        async with self._lock:
            if coalesce and self._loaded_at != seen:
                return
            now = utcnow()
            async with self._db.session() as s:
                rows = (await s.scalars(select(SigningKey))).all()
            published: dict[str, PublishedKey] = {}
            signers: dict[str, ActiveSigner] = {}
            # A kid names one key pair forever: what an earlier reload loaded is reused, so a
            # periodic reload decrypts and parses only keys it has not seen (parsing an RSA
            # private key took tens of ms of the event loop every key_cache_seconds).
            known_public = self._published
            known_signers = {signer.kid: signer for signer in self._signers.values()}
            for row in rows:
                if row.status == KeyStatus.retired and (
                    row.publish_until is None or row.publish_until < now
                ):
                    continue
                jwk = dict(row.public_jwk)
                known = known_public.get(row.kid)
                if (
                    known is not None
                    and known.algorithm == row.algorithm
                    and known.status == row.status
                    and known.jwk == jwk
                ):
                    published[row.kid] = known
                else:
                    published[row.kid] = PublishedKey(
                        row.kid, row.algorithm, row.status, jwk, _load_public(row.public_jwk)
                    )
                if row.status == KeyStatus.active and (
                    row.algorithm not in signers or row.activated_at
                ):
                    signer = known_signers.get(row.kid)
                    if signer is None or signer.algorithm != row.algorithm:
                        signer = self._open_signer(row)
                    signers[row.algorithm] = signer
            unchanged = list(published.items()) == list(known_public.items()) and all(
                published[k] is known_public[k] for k in published
            )
            self._published = published
            self._signers = signers
            if not unchanged:
                self._document = JwksDocument.of([k.jwk for k in published.values()])
            self._loaded_at = time.monotonic()

    def _open_signer(self, row: SigningKey) -> ActiveSigner:
        pem = self._master.open(row.private_key_encrypted, row.kid.encode())
        private = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(
            private,
            ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
        )
        return ActiveSigner(row.kid, row.algorithm, private)

    async def _maybe_reload(self) -> None:
        """Re-read the keys once per cache period. While one task re-reads, the others go on
        with the keys as loaded (they were current a cache period ago, like every worker's
        between two periods) instead of waiting behind it: at 64 connections every request
        in flight at the period's end used to queue for a read of its own, one after another
        (tens of milliseconds each period). Only the first load waits."""
        if time.monotonic() - self._loaded_at > self._settings.key_cache_seconds:
            if self._lock.locked() and self._loaded_at:
                return
            await self.reload(coalesce=True)

    async def signer(self, algorithm: str | None = None) -> ActiveSigner:
        """The active key of ``algorithm`` (default: the access tokens' algorithm)."""
        await self._maybe_reload()
        found = self._signers.get(algorithm or self._settings.algorithm.value)
        if found is None:
            raise NoActiveKey
        return found

    async def public_key(self, kid: str) -> PublishedKey | None:
        """The published key for ``kid``; re-reads once per cache period on a miss."""
        await self._maybe_reload()
        found = self._published.get(kid)
        if found is None and time.monotonic() - self._loaded_at > 1.0:
            # A key another replica just rotated in; bounded to one reload a second, and
            # concurrent requests with unknown kids share it.
            await self.reload(coalesce=True)
            found = self._published.get(kid)
        return found

    async def jwks(self) -> dict[str, Any]:
        await self._maybe_reload()
        return {"keys": [k.jwk for k in self._published.values()]}

    async def jwks_document(self) -> JwksDocument:
        """What ``GET /.well-known/jwks.json`` serves: no per-request serialisation."""
        await self._maybe_reload()
        return self._document

    async def list_keys(self) -> list[KeyInfo]:
        async with self._db.session() as s:
            rows = (await s.scalars(select(SigningKey).order_by(SigningKey.created_at))).all()
        return [
            KeyInfo(
                r.kid,
                r.algorithm,
                r.status,
                r.created_at.isoformat(),
                r.activated_at.isoformat() if r.activated_at else None,
                r.publish_until.isoformat() if r.publish_until else None,
            )
            for r in rows
        ]
