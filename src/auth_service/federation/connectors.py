"""Connectors: the upstream identity providers an operator registered, in the database.

Read on every use (no cache of the rows), so a change made by the CLI or the admin API takes
effect at the next sign-in in every worker, without a restart. Client secrets are sealed
under the master key, bound to the connector's id; they are never shown again.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import SplitResult, urlsplit

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.federation.errors import ConnectorExists, ConnectorNotFound, InvalidConnector
from auth_service.federation.models import ConnectorRow, FederatedIdentity
from auth_service.federation.upstream import Tokens
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
# GitHub (OAuth2, no ID token): the web host; its REST API is api.github.com, or /api/v3 of
# a GitHub Enterprise Server host given as --issuer.
GITHUB = "https://github.com"
GITHUB_SCOPE = "read:user user:email"
# OAuth2 endpoints, given only for --type oauth2 (OIDC discovers them; GitHub's are known).
ENDPOINTS = ("authorization_url", "token_url", "userinfo_url")
# Which userinfo field is which claim: a dotted path ("data.attributes.email") or a JSON
# pointer ("/data/attributes/email").
CLAIMS = ("subject", "email", "email_verified", "name", "groups")
DEFAULT_CLAIMS = {
    "subject": "sub",
    "email": "email",
    "email_verified": "email_verified",
    "name": "name",
    "groups": "groups",
}
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

    @property
    def store_tokens(self) -> bool:
        return bool(self.options.get("store_tokens"))

    @property
    def claims(self) -> dict[str, str]:
        """The claim mapping in force (the defaults, overridden by the operator's)."""
        return {**DEFAULT_CLAIMS, **self.options.get("claims", {})}

    @property
    def group_roles(self) -> dict[str, str]:
        return dict(self.options.get("group_roles", {}))

    def endpoint(self, name: str) -> str:
        """An OAuth2 endpoint of an oauth2 or github connector."""
        if self.type is ConnectorType.github:
            api = "https://api.github.com" if self.issuer == GITHUB else self.issuer + "/api/v3"
            return {
                "authorization_url": self.issuer + "/login/oauth/authorize",
                "token_url": self.issuer + "/login/oauth/access_token",
                "userinfo_url": api + "/user",
                "emails_url": api + "/user/emails",
            }[name]
        return str(self.options[name])


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
    authorization_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None
    claims: dict[str, str] | None = None
    store_tokens: bool = False
    group_roles: dict[str, str] | None = None


def check_issuer(issuer: str) -> str:
    """An https URL without query or fragment (http only on a loopback host, for testing)."""
    parts = _split("issuer", issuer)
    loopback = parts.hostname in _LOOPBACK
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise InvalidConnector("issuer must be an https URL")
    controls = CONTROL_CHARACTERS.search(issuer) is not None
    if not parts.hostname or parts.query or parts.fragment or controls:
        raise InvalidConnector("issuer must be a URL without query or fragment")
    # Discovery appends /.well-known/openid-configuration to the issuer without its slash.
    return issuer.rstrip("/")


def _split(label: str, url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError:  # e.g. "https://[" (an unclosed IPv6 literal)
        raise InvalidConnector(f"{label} must be a URL") from None


def check_url(label: str, url: str) -> str:
    """An endpoint: https (http only on a loopback host), no fragment; a query is kept."""
    parts = _split(label, url)
    loopback = parts.hostname in _LOOPBACK
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise InvalidConnector(f"{label} must be an https URL")
    if not parts.hostname or parts.fragment or CONTROL_CHARACTERS.search(url) is not None:
        raise InvalidConnector(f"{label} must be a URL without fragment")
    if len(url) > 512:
        raise InvalidConnector(f"{label} must be at most 512 characters")
    return url


def check_claims(claims: dict[str, str], kind: ConnectorType) -> dict[str, str]:
    """A claim mapping: known claims to a dotted path or a JSON pointer. An ID token's
    ``sub`` is always the subject of an OpenID Connect provider; GitHub's are fixed."""
    if kind is ConnectorType.github:
        raise InvalidConnector("claims are fixed for github (its user and email APIs)")
    clean: dict[str, str] = {}
    for claim, path in claims.items():
        if claim not in CLAIMS:
            raise InvalidConnector(f"claims: unknown claim {claim!r} (one of {', '.join(CLAIMS)})")
        if claim == "subject" and kind in OIDC_TYPES:
            raise InvalidConnector("claims: the subject of an OpenID Connect provider is sub")
        clean[claim] = _check_text(f"claims.{claim}", str(path), 200)
    return clean


def check_group_roles(mapping: dict[str, str]) -> dict[str, str]:
    """Upstream group to local role name (checked against the roles at sign-in)."""
    if len(mapping) > 100:
        raise InvalidConnector("group_roles: at most 100 groups")
    return {
        _check_text("group_roles group", str(g), 200): _check_text("group_roles role", str(r), 64)
        for g, r in mapping.items()
    }


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
        options = _options(
            spec.type,
            {
                "authorization_url": spec.authorization_url,
                "token_url": spec.token_url,
                "userinfo_url": spec.userinfo_url,
                "claims": spec.claims,
                "store_tokens": spec.store_tokens,
                "group_roles": spec.group_roles,
            },
            {},
        )
        issuer = spec.issuer or _default_issuer(spec.type, options)
        if spec.type is ConnectorType.oauth2 and spec.scope is None:
            raise InvalidConnector("scope is required for an oauth2 connector")
        default_scope = GITHUB_SCOPE if spec.type is ConnectorType.github else DEFAULT_SCOPE
        now = utcnow()
        values: dict[str, Any] = {
            "id": spec.id,
            "name": _check_text("name", spec.name, 100),
            "type": spec.type.value,
            "issuer": check_issuer(issuer),
            "client_id": _check_text("client id", spec.client_id, 512),
            "client_secret_sealed": self._seal(spec.id, spec.client_secret),
            "scope": _check_scope(spec.scope or default_scope, spec.type),
            "trust_email": spec.trust_email,
            "allow_signup": spec.allow_signup,
            "enabled": True,
            "options": options,
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

    def seal_tokens(self, connector: Connector, subject: str, tokens: Tokens) -> bytes | None:
        """The upstream tokens to keep for this identity, sealed; None when the connector
        does not keep them (or there are none)."""
        if not connector.store_tokens or tokens.access_token is None:
            return None
        kept = {k: v for k, v in asdict(tokens).items() if v is not None}
        kept["obtained_at"] = int(time.time())
        plain = json.dumps(kept, separators=(",", ":")).encode()
        return self._master_key.seal(plain, _token_binding(connector.id, subject))

    def open_tokens(self, connector_id: str, subject: str, sealed: bytes) -> dict[str, Any]:
        """Sealed tokens back (for the account's own use; never logged or exported)."""
        try:
            plain = self._master_key.open(sealed, _token_binding(connector_id, subject))
        except MasterKeyError:
            raise InvalidConnector("stored tokens cannot be opened with this master key") from None
        found: dict[str, Any] = json.loads(plain)
        return found

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
        optional = {k: changes.pop(k) for k in _OPTIONS if k in changes}
        if any(v is not None for v in optional.values()):
            values["options"] = _options(current.type, optional, current.options)
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
            async with self._db.transaction() as conn:
                await conn.execute(
                    update(ConnectorRow).where(ConnectorRow.id == connector_id).values(**values)
                )
                if current.store_tokens and not values.get("options", {}).get(
                    "store_tokens", True
                ):  # no longer kept: those kept so far go now
                    await conn.execute(
                        update(FederatedIdentity)
                        .where(FederatedIdentity.connector_id == connector_id)
                        .values(tokens_sealed=None, tokens_updated_at=None)
                    )
            await self._record(
                events.FEDERATION_CONNECTOR_UPDATED, connector_id, ctx, values, current.options
            )
        return await self.get(connector_id, enabled_only=False)

    async def delete(self, connector_id: str, ctx: RequestContext) -> None:
        """Remove a connector and every identity linked through it. Raises ConnectorNotFound."""
        await self.get(connector_id, enabled_only=False)
        async with self._db.single() as conn:
            await conn.execute(delete(ConnectorRow).where(ConnectorRow.id == connector_id))
        await self._record(events.FEDERATION_CONNECTOR_DELETED, connector_id, ctx, {})

    async def _record(
        self,
        event: str,
        connector_id: str,
        ctx: RequestContext,
        values: dict[str, Any],
        before: dict[str, Any] | None = None,
    ) -> None:
        # Which settings changed, never their values' secrets (the sealed one is only named).
        changed = sorted(k for k in values if k not in ("id", "created_at", "updated_at"))
        flags: tuple[str, ...] = ("enabled", "trust_email", "allow_signup")
        shown = {k: values[k] for k in flags if k in values}
        if "options" in values:  # the type-specific settings that changed, by name
            changed.remove("options")
            new, old = values["options"], before or {}
            changed = sorted([*changed, *(k for k in new if old.get(k) != new[k])])
        details: dict[str, Any] = {"connector": connector_id, "changed": changed, **shown}
        if "client_secret_sealed" in values:
            details["changed"] = [c for c in changed if c != "client_secret_sealed"] + [
                "client_credential"
            ]
        await self._audit.record(event, ctx, details=details)


_OPTIONS = (*ENDPOINTS, "claims", "store_tokens", "group_roles")


def _default_issuer(kind: ConnectorType, options: dict[str, Any]) -> str:
    if kind is ConnectorType.github:
        return GITHUB
    if kind is ConnectorType.oauth2:  # shown only: the origin of its authorization URL
        parts = urlsplit(str(options["authorization_url"]))
        return f"{parts.scheme}://{parts.netloc}"
    issuer = PRESET_ISSUERS.get(kind)
    if issuer is None:
        raise InvalidConnector("issuer is required for this type")
    return issuer


def _options(kind: ConnectorType, given: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The type-specific settings after ``given`` (None: unchanged), checked as a whole."""
    options = dict(current)
    for name in ENDPOINTS:
        if given.get(name) is not None:
            if kind is not ConnectorType.oauth2:
                raise InvalidConnector(f"{name} is only for an oauth2 connector")
            options[name] = check_url(name, given[name])
    if kind is ConnectorType.oauth2:
        missing = [n for n in ENDPOINTS if not options.get(n)]
        if missing:
            raise InvalidConnector(f"an oauth2 connector needs {', '.join(missing)}")
    if given.get("claims") is not None:
        options["claims"] = check_claims(dict(given["claims"]), kind)
    if given.get("group_roles") is not None:
        options["group_roles"] = check_group_roles(dict(given["group_roles"]))
    if given.get("store_tokens") is not None:
        options["store_tokens"] = bool(given["store_tokens"])
    return options


def _associated(connector_id: str) -> bytes:
    return b"auth-service/federation-connector/" + connector_id.encode()


def _token_binding(connector_id: str, subject: str) -> bytes:
    return b"auth-service/federation-tokens/" + connector_id.encode() + b"\x00" + subject.encode()
