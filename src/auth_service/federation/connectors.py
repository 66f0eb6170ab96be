"""Connectors: the upstream identity providers an operator registered, in the database.

Read on every use (no cache of the rows), so a change made by the CLI or the admin API takes
effect at the next sign-in in every worker, without a restart. Client secrets are sealed
under the master key, bound to the connector's id; they are never shown again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.federation.errors import ConnectorExists, ConnectorNotFound, InvalidConnector
from auth_service.federation.models import ConnectorRow
from auth_service.security.aead import MasterKey, MasterKeyError
from auth_service.security.text import CONTROL_CHARACTERS


class ConnectorType(StrEnum):
    oidc = "oidc"
    oauth2 = "oauth2"
    github = "github"
    google = "google"
    entra = "entra"
    gitlab = "gitlab"


# Presets only fill in defaults; each is validated as a generic OpenID Connect provider.
PRESET_ISSUERS: dict[ConnectorType, str] = {
    ConnectorType.google: "https://accounts.google.com",
    ConnectorType.entra: "https://login.microsoftonline.com/common/v2.0",
    ConnectorType.gitlab: "https://gitlab.com",
}
OIDC_TYPES = frozenset(
    {ConnectorType.oidc, ConnectorType.google, ConnectorType.entra, ConnectorType.gitlab}
)
DEFAULT_SCOPE = "openid email profile"
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Connector:
    id: str
    name: str
    type: ConnectorType
    issuer: str
    client_id: str
    scope: str
    trust_email: bool
    allow_signup: bool
    enabled: bool
    has_secret: bool
    created_at: datetime
    updated_at: datetime
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectorSpec:
    """What an operator gives to create a connector (``client_secret`` only here)."""

    id: str
    name: str
    type: ConnectorType
    client_id: str
    issuer: str | None = None
    client_secret: str | None = None
    scope: str | None = None
    trust_email: bool = False
    allow_signup: bool = True


def check_issuer(issuer: str) -> str:
    """An https URL without query or fragment (http only on a loopback host, for testing)."""
    parts = urlsplit(issuer)
    loopback = parts.hostname in _LOOPBACK
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise InvalidConnector("issuer must be an https URL")
    controls = CONTROL_CHARACTERS.search(issuer) is not None
    if not parts.hostname or parts.query or parts.fragment or controls:
        raise InvalidConnector("issuer must be a URL without query or fragment")
    # Discovery appends /.well-known/openid-configuration to the issuer without its slash.
    return issuer.rstrip("/")


def _check_text(label: str, value: str, limit: int) -> str:
    clean = value.strip()
    if not clean or len(clean) > limit or CONTROL_CHARACTERS.search(clean) is not None:
        raise InvalidConnector(f"{label} must be 1 to {limit} characters, no control characters")
    return clean


def _check_scope(scope: str, kind: ConnectorType) -> str:
    clean = " ".join(_check_text("scope", scope, 512).split())
    if kind in OIDC_TYPES and "openid" not in clean.split():
        raise InvalidConnector("scope of an OpenID Connect provider must include openid")
    return clean


def _connector(row: Any) -> Connector:
    return Connector(
        id=row.id,
        name=row.name,
        type=ConnectorType(row.type),
        issuer=row.issuer,
        client_id=row.client_id,
        scope=row.scope,
        trust_email=row.trust_email,
        allow_signup=row.allow_signup,
        enabled=row.enabled,
        has_secret=row.client_secret_sealed is not None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        options=dict(row.options or {}),
    )


class ConnectorStore:
    def __init__(self, db: Database, master_key: MasterKey, audit: AuditService) -> None:
        self._db = db
        self._master_key = master_key
        self._audit = audit

    def _seal(self, connector_id: str, secret: str | None) -> bytes | None:
        if secret is None:
            return None
        clean = _check_text("client secret", secret, 512)
        return self._master_key.seal(clean.encode(), _associated(connector_id))

    async def create(self, spec: ConnectorSpec, ctx: RequestContext) -> Connector:
        """Register a connector. Raises InvalidConnector or ConnectorExists."""
        if not _ID.match(spec.id):
            raise InvalidConnector("id must be 1 to 64 of a-z, 0-9, - and _")
        if spec.type not in OIDC_TYPES:
            raise InvalidConnector(f"type {spec.type.value} is not supported yet (use oidc)")
        issuer = spec.issuer or PRESET_ISSUERS.get(spec.type)
        if issuer is None:
            raise InvalidConnector("issuer is required for this type")
        now = utcnow()
        values: dict[str, Any] = {
            "id": spec.id,
            "name": _check_text("name", spec.name, 100),
            "type": spec.type.value,
            "issuer": check_issuer(issuer),
            "client_id": _check_text("client id", spec.client_id, 512),
            "client_secret_sealed": self._seal(spec.id, spec.client_secret),
            "scope": _check_scope(spec.scope or DEFAULT_SCOPE, spec.type),
            "trust_email": spec.trust_email,
            "allow_signup": spec.allow_signup,
            "enabled": True,
            "options": {},
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self._db.single() as conn:
                await conn.execute(insert(ConnectorRow).values(**values))
        except IntegrityError:
            raise ConnectorExists from None
        await self._record(events.FEDERATION_CONNECTOR_CREATED, spec.id, ctx, values)
        return await self.get(spec.id, enabled_only=False)

    async def list(self, *, enabled_only: bool = False) -> list[Connector]:
        query = select(ConnectorRow).order_by(ConnectorRow.created_at, ConnectorRow.id)
        if enabled_only:
            query = query.where(ConnectorRow.enabled.is_(True))
        async with self._db.single() as conn:
            rows = (await conn.execute(query)).all()
        return [_connector(r) for r in rows]

    async def get(self, connector_id: str, *, enabled_only: bool = True) -> Connector:
        """One connector (by default only an enabled one). Raises ConnectorNotFound."""
        if not _ID.match(connector_id):
            raise ConnectorNotFound
        async with self._db.single() as conn:
            row = (
                await conn.execute(select(ConnectorRow).where(ConnectorRow.id == connector_id))
            ).first()
        if row is None or (enabled_only and not row.enabled):
            raise ConnectorNotFound
        return _connector(row)

    async def client_secret(self, connector: Connector) -> str | None:
        async with self._db.single() as conn:
            sealed = (
                await conn.execute(
                    select(ConnectorRow.client_secret_sealed).where(ConnectorRow.id == connector.id)
                )
            ).scalar_one_or_none()
        if sealed is None:
            return None
        try:
            return self._master_key.open(sealed, _associated(connector.id)).decode()
        except MasterKeyError:
            raise InvalidConnector("client secret cannot be opened with this master key") from None

    async def update(
        self,
        connector_id: str,
        ctx: RequestContext,
        *,
        client_secret: str | None = None,
        **changes: Any,
    ) -> Connector:
        """Change what is given (name, issuer, client_id, scope, trust_email, allow_signup,
        enabled; a new client secret). Raises ConnectorNotFound or InvalidConnector."""
        current = await self.get(connector_id, enabled_only=False)
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if value is None:
                continue
            if key == "name":
                values[key] = _check_text("name", value, 100)
            elif key == "issuer":
                values[key] = check_issuer(value)
            elif key == "client_id":
                values[key] = _check_text("client id", value, 512)
            elif key == "scope":
                values[key] = _check_scope(value, current.type)
            elif key in ("trust_email", "allow_signup", "enabled"):
                values[key] = bool(value)
            else:
                raise InvalidConnector(f"{key} cannot be changed")
        if client_secret is not None:
            values["client_secret_sealed"] = self._seal(connector_id, client_secret)
        if values:
            values["updated_at"] = utcnow()
            async with self._db.single() as conn:
                await conn.execute(
                    update(ConnectorRow).where(ConnectorRow.id == connector_id).values(**values)
                )
            await self._record(events.FEDERATION_CONNECTOR_UPDATED, connector_id, ctx, values)
        return await self.get(connector_id, enabled_only=False)

    async def delete(self, connector_id: str, ctx: RequestContext) -> None:
        """Remove a connector and every identity linked through it. Raises ConnectorNotFound."""
        await self.get(connector_id, enabled_only=False)
        async with self._db.single() as conn:
            await conn.execute(delete(ConnectorRow).where(ConnectorRow.id == connector_id))
        await self._record(events.FEDERATION_CONNECTOR_DELETED, connector_id, ctx, {})

    async def _record(
        self, event: str, connector_id: str, ctx: RequestContext, values: dict[str, Any]
    ) -> None:
        # Which settings changed, never their values' secrets (the sealed one is only named).
        changed = sorted(k for k in values if k not in ("id", "created_at", "updated_at"))
        flags: tuple[str, ...] = ("enabled", "trust_email", "allow_signup")
        shown = {k: values[k] for k in flags if k in values}
        details: dict[str, Any] = {"connector": connector_id, "changed": changed, **shown}
        if "client_secret_sealed" in values:
            details["changed"] = [c for c in changed if c != "client_secret_sealed"] + [
                "client_credential"
            ]
        await self._audit.record(event, ctx, details=details)


def _associated(connector_id: str) -> bytes:
    return b"auth-service/federation-connector/" + connector_id.encode()
