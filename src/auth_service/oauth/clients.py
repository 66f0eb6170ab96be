"""OAuth clients: registration, secrets (hashed, rotatable with overlap), audit.

Secrets are 256-bit random values shown once; only their SHA-256 is stored and a presented
secret is compared with each live digest in constant time (ADR 0701). A rotation adds a new
secret and gives the old ones an expiry, so a deployment can roll the new secret out while
the old one still works.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.oauth.client_cache import ClientCache
from auth_service.oauth.client_metadata import ClientPolicy, ClientSpec, ClientType, sector_of
from auth_service.oauth.errors import ClientNotFound, InvalidClientMetadata
from auth_service.oauth.models import OAuthClient, OAuthClientSecret
from auth_service.security.random import constant_time_equals, new_token, token_digest

MAX_CLIENT_ID_LENGTH = 64
MAX_SECRET_LENGTH = 256
# A secret an operator chooses (configuration as code) must be as hard to guess as ours.
MIN_CHOSEN_SECRET_LENGTH = 32
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")


@dataclass(frozen=True)
class Client:
    """A registered client, as the protocol sees it."""

    pk: uuid.UUID
    tenant_id: uuid.UUID
    client_id: str
    name: str
    client_type: ClientType
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    resources: tuple[str, ...]
    first_party: bool
    token_endpoint_auth_method: str
    id_token_signed_response_alg: str
    dynamically_registered: bool
    created_at: datetime
    updated_at: datetime
    require_pushed_authorization_requests: bool = False
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    subject_type: str = "public"
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    token_exchange_audiences: tuple[str, ...] = ()

    @property
    def public(self) -> bool:
        return self.client_type is ClientType.public

    @property
    def sector(self) -> str | None:
        """OIDC Core 8.1: the sector a pairwise client's subjects are computed for."""
        return sector_of(self.redirect_uris)

    def spec(self) -> ClientSpec:
        return ClientSpec(
            name=self.name,
            client_type=self.client_type,
            redirect_uris=self.redirect_uris,
            post_logout_redirect_uris=self.post_logout_redirect_uris,
            grant_types=self.grant_types,
            scope=" ".join(self.scopes),
            resources=self.resources,
            first_party=self.first_party,
            token_endpoint_auth_method=self.token_endpoint_auth_method,
            id_token_signed_response_alg=self.id_token_signed_response_alg,
            require_pushed_authorization_requests=self.require_pushed_authorization_requests,
            jwks=self.jwks,
            jwks_uri=self.jwks_uri,
            subject_type=self.subject_type,
            backchannel_logout_uri=self.backchannel_logout_uri,
            backchannel_logout_session_required=self.backchannel_logout_session_required,
            token_exchange_audiences=self.token_exchange_audiences,
        )


@dataclass(frozen=True)
class SecretRotation:
    secret: str
    previous_expires_at: datetime | None


def _metadata(spec: ClientSpec) -> dict[str, Any]:
    return {
        "redirect_uris": list(spec.redirect_uris),
        "post_logout_redirect_uris": list(spec.post_logout_redirect_uris),
        "grant_types": list(spec.grant_types),
        "scope": spec.scope,
        "resources": list(spec.resources),
        "token_endpoint_auth_method": spec.token_endpoint_auth_method,
        "id_token_signed_response_alg": spec.id_token_signed_response_alg,
        "require_pushed_authorization_requests": spec.require_pushed_authorization_requests,
        "jwks": spec.jwks,
        "jwks_uri": spec.jwks_uri,
        "subject_type": spec.subject_type,
        "backchannel_logout_uri": spec.backchannel_logout_uri,
        "backchannel_logout_session_required": spec.backchannel_logout_session_required,
        "token_exchange_audiences": list(spec.token_exchange_audiences),
    }


# The columns of a client, named as the model's attributes: ``find`` reads them with one
# Core statement (no ORM session, no transaction) and ``_client`` takes either.
_CLIENT_COLUMNS = (
    OAuthClient.id,
    OAuthClient.tenant_id,
    OAuthClient.client_id,
    OAuthClient.name,
    OAuthClient.client_type,
    OAuthClient.metadata_.label("metadata_"),
    OAuthClient.first_party,
    OAuthClient.dynamically_registered,
    OAuthClient.created_at,
    OAuthClient.updated_at,
)


def _client(row: OAuthClient | Row[Any]) -> Client:
    meta = row.metadata_
    return Client(
        pk=row.id,
        tenant_id=row.tenant_id,
        client_id=row.client_id,
        name=row.name,
        client_type=ClientType(row.client_type),
        redirect_uris=tuple(meta.get("redirect_uris", ())),
        post_logout_redirect_uris=tuple(meta.get("post_logout_redirect_uris", ())),
        grant_types=tuple(meta.get("grant_types", ())),
        scopes=tuple(str(meta.get("scope", "")).split()),
        resources=tuple(meta.get("resources", ())),
        first_party=row.first_party,
        token_endpoint_auth_method=str(meta.get("token_endpoint_auth_method", "none")),
        id_token_signed_response_alg=str(meta.get("id_token_signed_response_alg", "RS256")),
        dynamically_registered=row.dynamically_registered,
        created_at=row.created_at,
        updated_at=row.updated_at,
        require_pushed_authorization_requests=bool(
            meta.get("require_pushed_authorization_requests", False)
        ),
        jwks=meta.get("jwks"),
        jwks_uri=meta.get("jwks_uri"),
        subject_type=str(meta.get("subject_type", "public")),
        backchannel_logout_uri=meta.get("backchannel_logout_uri"),
        backchannel_logout_session_required=bool(
            meta.get("backchannel_logout_session_required", False)
        ),
        token_exchange_audiences=tuple(meta.get("token_exchange_audiences", ())),
    )


def _check_chosen_secret(secret: str) -> None:
    if not MIN_CHOSEN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        raise InvalidClientMetadata(
            "client_secret", f"{MIN_CHOSEN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters"
        )


def new_client_id() -> str:
    """128 random bits, URL-safe (may contain ``-`` and ``_``)."""
    return secrets.token_urlsafe(16)


class ClientService:
    def __init__(
        self,
        db: Database,
        audit: AuditService,
        policy: Callable[[], ClientPolicy],
        tenant_id: Callable[[], uuid.UUID],
        overlap_seconds: Callable[[], int],
        cache: ClientCache[Client] | None = None,
    ) -> None:
        self._db = db
        # Authenticated clients of this worker (ADR 0761); every change below is published.
        self.cache = cache
        self._audit = audit
        self._policy = policy
        self._tenant_id = tenant_id
        self._overlap_seconds = overlap_seconds

    def check(self, spec: ClientSpec) -> ClientSpec:
        """``spec`` as it would be stored (defaults filled in, scope normalised). Raises
        InvalidClientMetadata."""
        return self._policy().check(spec)

    async def create(
        self,
        spec: ClientSpec,
        ctx: RequestContext,
        *,
        dynamically_registered: bool = False,
        client_id: str | None = None,
        secret: str | None = None,
    ) -> tuple[Client, str | None]:
        """Register a client; its secret (confidential clients) is returned once, here.

        ``client_id`` and ``secret`` are the operator's choice when given (configuration as
        code), otherwise random. Raises InvalidClientMetadata."""
        spec = self._policy().check(spec)
        now = utcnow()
        pk = uuid.uuid4()
        if client_id is not None and not _CLIENT_ID.match(client_id):
            raise InvalidClientMetadata("client_id", "1 to 64 of A-Z, a-z, 0-9, . _ ~ -")
        client_id = client_id or new_client_id()
        tenant_id = self._tenant_id()
        # Only the client_secret_* methods have a secret (private_key_jwt has keys).
        method = spec.token_endpoint_auth_method or ""
        if not method.startswith("client_secret_"):
            secret = None
        elif secret is not None:
            _check_chosen_secret(secret)
        else:
            secret = new_token()
        row = OAuthClient(
            id=pk,
            tenant_id=tenant_id,
            client_id=client_id,
            name=spec.name,
            client_type=spec.client_type.value,
            metadata_=_metadata(spec),
            first_party=spec.first_party,
            dynamically_registered=dynamically_registered,
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as s:
            s.add(row)
            await s.flush()
            if secret is not None:
                await s.execute(self._insert_secret(pk, tenant_id, secret, now))
        await self._changed(client_id)
        event = events.OAUTH_CLIENT_REGISTERED if dynamically_registered else None
        await self._record(event or events.OAUTH_CLIENT_CREATED, ctx, client_id, spec)
        return _client(row), secret

    @staticmethod
    def _insert_secret(pk: uuid.UUID, tenant_id: uuid.UUID, secret: str, now: datetime) -> Any:
        return insert(OAuthClientSecret).values(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            client_pk=pk,
            secret_hash=token_digest(secret),
            created_at=now,
            expires_at=None,
        )

    async def find(self, client_id: str | None) -> Client | None:
        """The client with this client_id in the tenant, or None."""
        if not client_id or len(client_id) > MAX_CLIENT_ID_LENGTH:
            return None
        # One statement in autocommit: this runs for every client-authenticated request
        # (token, introspection, revocation), where BEGIN/ROLLBACK and the ORM's identity map
        # were a third of the work (bench/oidc/README.md).
        async with self._db.single() as conn:
            row = (
                await conn.execute(
                    select(*_CLIENT_COLUMNS).where(
                        OAuthClient.client_id == client_id,
                        OAuthClient.tenant_id == self._tenant_id(),
                    )
                )
            ).first()
        return _client(row) if row else None

    async def get(self, client_id: str) -> Client:
        """Raises ClientNotFound."""
        found = await self.find(client_id)
        if found is None:
            raise ClientNotFound
        return found

    async def with_backchannel_logout(
        self, session: AsyncSession, client_ids: list[str]
    ) -> frozenset[str]:
        """Which of these clients registered a ``backchannel_logout_uri`` (read in the
        caller's transaction: the one that ends the sessions they were issued tokens in)."""
        if not client_ids:
            return frozenset()
        rows = await session.execute(
            select(OAuthClient.client_id, OAuthClient.metadata_).where(
                OAuthClient.client_id.in_(client_ids)
            )
        )
        return frozenset(r[0] for r in rows if r[1].get("backchannel_logout_uri"))

    async def by_pk(self, pks: list[uuid.UUID]) -> dict[uuid.UUID, Client]:
        async with self._db.session() as s:
            rows = (await s.scalars(select(OAuthClient).where(OAuthClient.id.in_(pks)))).all()
        return {r.id: _client(r) for r in rows}

    async def list(self) -> list[Client]:
        """Every client of the tenant, oldest first."""
        async with self._db.session() as s:
            rows = (
                await s.scalars(
                    select(OAuthClient)
                    .where(OAuthClient.tenant_id == self._tenant_id())
                    .order_by(OAuthClient.created_at, OAuthClient.client_id)
                )
            ).all()
        return [_client(r) for r in rows]

    async def update(self, client_id: str, ctx: RequestContext, **changes: Any) -> Client:
        """Change registered metadata (``ClientSpec`` fields; the type stays). Raises
        ClientNotFound or InvalidClientMetadata."""
        current = await self.get(client_id)
        changes.pop("client_type", None)
        spec = self._policy().check(replace(current.spec(), **changes))
        now = utcnow()
        async with self._db.single() as conn:
            await conn.execute(
                update(OAuthClient)
                .where(OAuthClient.id == current.pk)
                .values(
                    name=spec.name,
                    metadata_=_metadata(spec),
                    first_party=spec.first_party,
                    updated_at=now,
                )
            )
        await self._changed(client_id)
        await self._record(events.OAUTH_CLIENT_UPDATED, ctx, client_id, spec)
        return await self.get(client_id)

    async def rotate_secret(
        self,
        client_id: str,
        ctx: RequestContext,
        *,
        overlap_seconds: int | None = None,
        secret: str | None = None,
    ) -> SecretRotation:
        """A new secret (returned once; ``secret`` when the operator chose it); the current
        ones keep working for ``overlap_seconds`` (default
        ``oauth.secret_rotation_overlap_seconds``; 0 ends them now). Raises ClientNotFound,
        or InvalidClientMetadata for a public client or a chosen secret too short."""
        client = await self.get(client_id)
        if client.public:
            raise InvalidClientMetadata("client_type", "a public client has no secret")
        if secret is not None:
            _check_chosen_secret(secret)
        overlap = self._overlap_seconds() if overlap_seconds is None else overlap_seconds
        now = utcnow()
        until = now + timedelta(seconds=overlap)
        secret = secret or new_token()
        async with self._db.transaction() as s:
            # An earlier, shorter expiry stays: a rotation never extends an old secret.
            await s.execute(
                update(OAuthClientSecret)
                .where(
                    OAuthClientSecret.client_pk == client.pk,
                    or_(
                        OAuthClientSecret.expires_at.is_(None),
                        OAuthClientSecret.expires_at > until,
                    ),
                )
                .values(expires_at=until)
            )
            await s.execute(self._insert_secret(client.pk, client.tenant_id, secret, now))
            await s.execute(
                delete(OAuthClientSecret).where(
                    OAuthClientSecret.client_pk == client.pk, OAuthClientSecret.expires_at <= now
                )
            )
        await self._changed(client_id)
        await self._audit.record(
            events.OAUTH_CLIENT_SECRET_ROTATED,
            ctx,
            details={"client_id": client_id, "previous_valid_until": until.isoformat()},
        )
        return SecretRotation(secret, until)

    async def delete(self, client_id: str, ctx: RequestContext) -> Client:
        """Remove a client with its secrets, codes and consents. Raises ClientNotFound."""
        client = await self.get(client_id)
        async with self._db.single() as conn:
            await conn.execute(delete(OAuthClient).where(OAuthClient.id == client.pk))
        await self._changed(client_id)
        await self._audit.record(events.OAUTH_CLIENT_DELETED, ctx, details={"client_id": client_id})
        return client

    async def authenticate(self, client_id: str | None, secret: str) -> Client | None:
        """The client with this id if ``secret`` is one of its live secrets, else None (the
        same answer for an unknown client and a wrong secret).

        ``find`` and ``verify_secret`` in ONE statement: the client's columns joined with its
        live secret digests (one row per digest). Client authentication runs on every token,
        introspection and revocation request, and each round trip costs more here than the
        rest of a client_credentials grant (bench/oidc/README.md)."""
        if not client_id or len(client_id) > MAX_CLIENT_ID_LENGTH:
            return None
        if not secret or len(secret) > MAX_SECRET_LENGTH:
            return None
        digest = token_digest(secret)
        tenant_id = self._tenant_id()
        cache = self.cache
        pending = None
        if cache is not None:
            cached = cache.get(tenant_id, client_id, digest)
            if cached is not None:
                return cached
            pending = cache.begin()
        live = and_(
            OAuthClientSecret.client_pk == OAuthClient.id,
            or_(OAuthClientSecret.expires_at.is_(None), OAuthClientSecret.expires_at > utcnow()),
        )
        async with self._db.single() as conn:
            rows = (
                await conn.execute(
                    select(
                        *_CLIENT_COLUMNS,
                        OAuthClientSecret.secret_hash,
                        OAuthClientSecret.expires_at.label("secret_expires_at"),
                    )
                    .select_from(OAuthClient)
                    .outerjoin(OAuthClientSecret, live)
                    .where(
                        OAuthClient.client_id == client_id,
                        OAuthClient.tenant_id == tenant_id,
                    )
                )
            ).all()
        # Every digest is compared (no early exit): the time says nothing about which matched.
        found = False
        expires_at = None
        for row in rows:
            if row.secret_hash is not None:
                matched = constant_time_equals(row.secret_hash, digest)
                found |= matched
                if matched:
                    expires_at = row.secret_expires_at
        if not found:
            return None
        client = _client(rows[0])
        if cache is not None and pending is not None:
            cache.store(pending, tenant_id, client_id, digest, client, expires_at)
        return client

    async def _changed(self, client_id: str) -> None:
        """After a change of the client committed: every worker's cache forgets it."""
        if self.cache is not None:
            await self.cache.changed(client_id)

    async def _record(
        self, event: str, ctx: RequestContext, client_id: str, spec: ClientSpec
    ) -> None:
        await self._audit.record(
            event,
            ctx,
            details={
                "client_id": client_id,
                "name": spec.name,
                "client_type": spec.client_type.value,
                "grant_types": list(spec.grant_types),
                "scope": spec.scope,
                "redirect_uris": list(spec.redirect_uris),
                "first_party": spec.first_party,
            },
        )
