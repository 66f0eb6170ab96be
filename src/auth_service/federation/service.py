"""Signing in through an upstream identity provider: the relying-party side of the OpenID
Connect authorization code flow (Core 1.0 section 3.1) with PKCE (RFC 7636, S256), and the
local account it ends in (found by link, linked by a trusted verified email, or created).

What must survive the trip to the provider (``state``'s secret, the ``nonce``, the PKCE
verifier, where to continue afterwards) is a flow bound to the browser that started it: a
callback in another browser, a replayed one or a forged ``state`` fails as
FederationStateInvalid. The callback spends the flow before it does anything else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import structlog
from sqlalchemy import Insert, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from auth_service.accounts.assurance import Assurance
from auth_service.accounts.credentials import VerifiedLogin
from auth_service.accounts.errors import EmailTaken, InvalidEmail
from auth_service.accounts.guard import AttemptGuard
from auth_service.accounts.identity import BuiltinRole
from auth_service.accounts.models import UserRole
from auth_service.accounts.roles import active_admins, role_id
from auth_service.accounts.service import AccountService
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.federation import id_token
from auth_service.federation.connectors import (
    OIDC_TYPES,
    Connector,
    ConnectorStore,
    ConnectorType,
)
from auth_service.federation.errors import (
    EmailCollision,
    EmailMissing,
    FederationCancelled,
    FederationError,
    FederationStateInvalid,
    FederationTokenInvalid,
    IdentityTaken,
    LastSignInMethod,
    LinkNotFound,
    SignupClosed,
)
from auth_service.federation.models import ConnectorRow, FederatedIdentity
from auth_service.federation.upstream import GITHUB_JSON, Metadata, Tokens, Upstream
from auth_service.flows.errors import FlowExpired
from auth_service.flows.store import Flow, FlowKind, FlowStore
from auth_service.security.ratelimit import Limiter
from auth_service.security.text import CONTROL_CHARACTERS

log = structlog.get_logger(__name__)

FLOW_TTL_SECONDS = 600


@dataclass(frozen=True)
class Continuation:
    """Where the browser goes after the upstream sign-in: a pending sign-in flow (an OAuth2
    authorization) and/or a same-origin ``return_to``."""

    pending_flow: uuid.UUID | None
    return_to: str


@dataclass(frozen=True)
class FederatedSignIn:
    """A finished callback: a sign-in (``verified``), or, when a signed-in user linked
    another provider from the account page, only ``linked_to``."""

    verified: VerifiedLogin | None
    continuation: Continuation
    created: bool
    linked_to: uuid.UUID | None = None


@dataclass(frozen=True)
class LinkedIdentity:
    id: uuid.UUID
    connector_id: str
    connector_name: str
    email: str | None
    created_at: Any
    last_used_at: Any


@dataclass(frozen=True)
class Claims:
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    groups: tuple[str, ...] = ()


def s256(verifier: str) -> str:
    """RFC 7636 section 4.2: BASE64URL(SHA256(ASCII(code_verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class FederationService:
    def __init__(
        self,
        db: Database,
        connectors: ConnectorStore,
        upstream: Upstream,
        flows: FlowStore,
        accounts: AccountService,
        audit: AuditService,
        guard: AttemptGuard,
        public_url: Callable[[], str],
    ) -> None:
        self._db = db
        self._guard = guard
        self.connectors = connectors
        self.upstream = upstream
        self._flows = flows
        self._accounts = accounts
        self._audit = audit
        self._public_url = public_url

    def redirect_uri(self, connector_id: str) -> str:
        """The callback to register at the provider."""
        return f"{self._public_url().rstrip('/')}/login/federated/{connector_id}/callback"

    def _guarded(self, connector_id: str, ctx: RequestContext) -> AbstractAsyncContextManager[None]:
        """The connector's circuit breaker around calls to its provider; opening it is
        audited (once per opening, per process)."""

        async def opened() -> None:
            await self._audit.record(
                events.FEDERATION_BREAKER_OPENED,
                ctx,
                outcome="failure",
                details={"connector": connector_id},
            )

        return self.upstream.breaker.call(connector_id, opened)

    async def _metadata(self, connector: Connector) -> Metadata:
        entra = connector.type is ConnectorType.entra
        return await self.upstream.metadata(connector.issuer, tenant_template=entra)

    async def begin(
        self,
        connector_id: str,
        *,
        binding: str,
        continuation: Continuation,
        ctx: RequestContext,
        link_user: uuid.UUID | None = None,
    ) -> str:
        """The provider's authorization URL for this browser (OIDC Core 3.1.2.1); with
        ``link_user`` (a signed-in user, the flow bound to their session) the callback links
        the upstream identity to that account instead of signing in.
        Raises ConnectorNotFound, UpstreamUnavailable or InvalidConnector (audited)."""
        # Anyone may ask and each start writes a flow: it counts toward ip.login, like a
        # password or a passkey sign-in. Raises RateLimited.
        await self._guard.count(Limiter.ip_login, ctx.ip or "unknown", ctx)
        try:
            return await self._begin(connector_id, binding, continuation, link_user, ctx)
        except FederationError as exc:
            await self._failed(connector_id, exc, ctx)
            raise

    async def _begin(
        self,
        connector_id: str,
        binding: str,
        continuation: Continuation,
        link_user: uuid.UUID | None,
        ctx: RequestContext,
    ) -> str:
        connector = await self.connectors.get(connector_id)
        if connector.type in OIDC_TYPES:
            async with self._guarded(connector.id, ctx):
                authorization_endpoint = (await self._metadata(connector)).authorization_endpoint
        else:  # OAuth2 without discovery
            authorization_endpoint = connector.endpoint("authorization_url")
        secret, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        flow = await self._flows.create(
            FlowKind.federation,
            binding=binding,
            tenant_id=self._accounts.tenant_id,
            ttl_seconds=FLOW_TTL_SECONDS,
            state={
                "connector": connector.id,
                "secret": secret,
                "nonce": nonce,
                "verifier": verifier,
                "pending": str(continuation.pending_flow or ""),
                "return_to": continuation.return_to,
                "link_user": str(link_user or ""),
            },
        )
        query = {
            "response_type": "code",
            "client_id": connector.client_id,
            "redirect_uri": self.redirect_uri(connector.id),
            "scope": connector.scope,
            "state": f"{flow.id}.{secret}",
            "nonce": nonce,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
        if connector.type not in OIDC_TYPES:
            del query["nonce"]  # no ID token to carry it back
        separator = "&" if "?" in authorization_endpoint else "?"
        return authorization_endpoint + separator + urlencode(query)

    async def finish(
        self, connector_id: str, params: dict[str, str], *, binding: str, ctx: RequestContext
    ) -> FederatedSignIn:
        """The callback (OIDC Core 3.1.2.5 and 3.1.3): check ``state``, exchange the code,
        verify the ID token, find or create the account. Every failure is audited and raised
        as a FederationError (or ConnectorNotFound)."""
        try:
            return await self._finish(connector_id, params, binding, ctx)
        except FederationError as exc:
            await self._failed(connector_id, exc, ctx)
            raise

    async def _failed(self, connector_id: str, exc: FederationError, ctx: RequestContext) -> None:
        await self._audit.record(
            events.FEDERATION_FAILED,
            ctx,
            outcome="failure",
            details={"connector": connector_id[:64], "reason": _reason(exc)},
        )

    async def _finish(
        self, connector_id: str, params: dict[str, str], binding: str, ctx: RequestContext
    ) -> FederatedSignIn:
        flow = await self._spend(connector_id, params.get("state", ""), binding)
        if "error" in params:
            # An RFC 6749 error code is [\x20-\x7e]; we keep a plain slug for the audit.
            raise FederationCancelled(re.sub(r"[^a-z0-9_]", "", params["error"].lower())[:64])
        code = params.get("code")
        if not code:
            raise FederationCancelled("no_code")
        connector = await self.connectors.get(connector_id)
        async with self._guarded(connector.id, ctx):
            if connector.type in OIDC_TYPES:
                claims, tokens = await self._claims(connector, code, flow, params.get("iss"))
            else:
                claims, tokens = await self._oauth2_claims(connector, code, flow)
        sealed = self.connectors.seal_tokens(connector, claims.subject, tokens)
        continuation = Continuation(None, str(flow.state.get("return_to") or ""))
        if flow.state.get("link_user"):
            user = uuid.UUID(str(flow.state["link_user"]))
            await self._link_signed_in(user, connector, claims, sealed, ctx)
            return FederatedSignIn(None, continuation, False, linked_to=user)
        user_id, created = await self._account(connector, claims, sealed, ctx)
        if connector.group_roles:
            await self._sync_roles(user_id, connector, claims.groups, ctx)
        verified = await self._accounts.credentials.resume(user_id, amr=(), acr=Assurance.aal1)
        await self._audit.record(
            events.FEDERATION_SIGNED_IN,
            ctx,
            subject=user_id,
            details={"connector": connector.id, "created": created},
        )
        pending = flow.state.get("pending") or None
        if pending:
            continuation = Continuation(uuid.UUID(pending), continuation.return_to)
        return FederatedSignIn(verified, continuation, created)

    async def _link_signed_in(
        self,
        user_id: uuid.UUID,
        connector: Connector,
        claims: Claims,
        sealed: bytes | None,
        ctx: RequestContext,
    ) -> None:
        """Link for a user who proved their account by signing in (any email: the user
        holds both accounts). An identity linked to someone else stays theirs."""
        linked = await self._linked_user(connector.id, claims.subject, sealed)
        if linked is None:
            await self._link(user_id, connector, claims, sealed, ctx)
        elif linked != user_id:
            raise IdentityTaken

    async def _spend(self, connector_id: str, state: str, binding: str) -> Flow:
        flow_id, _, secret = state.partition(".")
        try:
            flow = await self._flows.load(uuid.UUID(flow_id), FlowKind.federation, binding=binding)
        except (ValueError, FlowExpired):
            raise FederationStateInvalid("unknown") from None
        expected = str(flow.state.get("secret", ""))
        if not hmac.compare_digest(secret.encode(), expected.encode()):
            raise FederationStateInvalid("secret")
        if flow.state.get("connector") != connector_id:
            raise FederationStateInvalid("connector")
        try:
            await self._flows.finish(flow)  # used once, whatever happens next
        except FlowExpired:
            raise FederationStateInvalid("spent") from None
        return flow

    async def _claims(
        self, connector: Connector, code: str, flow: Flow, iss: str | None
    ) -> tuple[Claims, Tokens]:
        meta = await self._metadata(connector)
        # RFC 9207: a provider that names itself in the response must name the one we asked
        # (a mix-up attack swaps providers between the request and the response).
        if iss is not None and "{tenantid}" not in meta.issuer and iss != meta.issuer:
            raise FederationTokenInvalid("iss_response")
        nonce = str(flow.state["nonce"])
        tokens = await self.upstream.exchange(
            meta,
            code=code,
            redirect_uri=self.redirect_uri(connector.id),
            code_verifier=str(flow.state["verifier"]),
            client_id=connector.client_id,
            client_secret=await self.connectors.client_secret(connector),
        )
        assert tokens.id_token is not None  # exchange() refuses a response without one
        keys = await self.upstream.jwks(meta.jwks_uri, id_token.key_id(tokens.id_token))
        expected = id_token.Expected(meta.issuer, connector.client_id, nonce)
        verified = id_token.validate(tokens.id_token, keys, expected, now=time.time())
        merged = dict(verified)
        if tokens.access_token is not None:
            info = await self.upstream.userinfo(meta, tokens.access_token)
            # OIDC Core 5.3.2: userinfo of another subject must not be used.
            if info.get("sub") == verified["sub"]:
                merged = {**info, **verified}
        return mapped(merged, connector.claims), tokens

    async def _oauth2_claims(
        self, connector: Connector, code: str, flow: Flow
    ) -> tuple[Claims, Tokens]:
        """A plain OAuth2 provider: the code for an access token, then who it belongs to
        from its API (GitHub's user and emails, or the configured userinfo URL)."""
        github = connector.type is ConnectorType.github
        tokens = await self.upstream.oauth2_exchange(
            connector.endpoint("token_url"),
            code=code,
            redirect_uri=self.redirect_uri(connector.id),
            code_verifier=str(flow.state["verifier"]),
            client_id=connector.client_id,
            client_secret=await self.connectors.client_secret(connector),
            basic=not github,
        )
        assert tokens.access_token is not None  # oauth2_exchange refuses one without
        if github:
            return await github_claims(self.upstream, connector, tokens.access_token), tokens
        info = await self.upstream.api(connector.endpoint("userinfo_url"), tokens.access_token)
        if not isinstance(info, dict):
            raise FederationTokenInvalid("userinfo")
        return mapped(info, connector.claims), tokens

    async def _account(
        self, connector: Connector, claims: Claims, sealed: bytes | None, ctx: RequestContext
    ) -> tuple[uuid.UUID, bool]:
        """The local account: the linked one; or one whose email the provider asserts as
        verified, when the connector is trusted for email; or a new one (if allowed)."""
        linked = await self._linked_user(connector.id, claims.subject, sealed)
        if linked is not None:
            return linked, False
        if not claims.email:
            raise EmailMissing
        tenant = self._accounts.tenant_id
        existing = await self._accounts.identities.by_email(tenant, claims.email)
        if existing is not None:
            if not (claims.email_verified and connector.trust_email):
                raise EmailCollision
            await self._link(existing.id, connector, claims, sealed, ctx)
            return existing.id, False
        if not connector.allow_signup:
            raise SignupClosed
        try:
            identity = await self._accounts.registration.create_federated(
                claims.email,
                claims.name,
                verified=claims.email_verified and connector.trust_email,
                ctx=ctx,
                with_rows=lambda new: [self._link_row(new.id, connector, claims, sealed)],
                details={"connector": connector.id},
            )
        except InvalidEmail:
            raise EmailMissing from None
        except (EmailTaken, IntegrityError):
            raise EmailCollision from None
        return identity.id, True

    async def _linked_user(
        self, connector_id: str, subject: str, sealed: bytes | None
    ) -> uuid.UUID | None:
        """The user linked to this upstream identity; its tokens replaced by this sign-in's
        (or removed, when the connector does not keep them)."""
        now = utcnow()
        async with self._db.single() as conn:
            return await conn.scalar(
                update(FederatedIdentity)
                .where(
                    FederatedIdentity.connector_id == connector_id,
                    FederatedIdentity.subject == subject,
                )
                .values(
                    last_used_at=now,
                    tokens_sealed=sealed,
                    tokens_updated_at=now if sealed is not None else None,
                )
                .returning(FederatedIdentity.user_id)
            )

    def _link_row(
        self, user_id: uuid.UUID, connector: Connector, claims: Claims, sealed: bytes | None
    ) -> Insert:
        now = utcnow()
        return insert(FederatedIdentity).values(
            id=uuid.uuid4(),
            tenant_id=self._accounts.tenant_id,
            user_id=user_id,
            connector_id=connector.id,
            subject=claims.subject,
            email=claims.email,
            created_at=now,
            last_used_at=now,
            tokens_sealed=sealed,
            tokens_updated_at=now if sealed is not None else None,
        )

    async def _link(
        self,
        user_id: uuid.UUID,
        connector: Connector,
        claims: Claims,
        sealed: bytes | None,
        ctx: RequestContext,
    ) -> None:
        try:
            async with self._db.single() as conn:
                await conn.execute(self._link_row(user_id, connector, claims, sealed))
        except IntegrityError:
            raise EmailCollision from None
        await self._audit.record(
            events.FEDERATION_LINKED, ctx, subject=user_id, details={"connector": connector.id}
        )

    async def _sync_roles(
        self, user_id: uuid.UUID, connector: Connector, groups: tuple[str, ...], ctx: RequestContext
    ) -> None:
        """The roles the connector's group mapping names follow the upstream's groups at each
        sign-in: granted to members, revoked from the others. Roles it does not name are
        left alone; a role the tenant does not have is skipped (logged); the last active
        admin keeps the role."""
        tenant = self._accounts.tenant_id
        mapping = connector.group_roles
        wanted_names = {role for group, role in mapping.items() if group in groups}
        granted: list[str] = []
        revoked: list[str] = []
        async with self._db.transaction() as s:
            ids: dict[str, uuid.UUID] = {}
            for name in sorted(set(mapping.values())):
                try:
                    ids[name] = await role_id(s, tenant, name)
                except ValueError:
                    log.warning("federation_unknown_role", connector=connector.id, role=name)
            held = set(
                (
                    await s.scalars(
                        select(UserRole.role_id).where(
                            UserRole.user_id == user_id, UserRole.role_id.in_(ids.values())
                        )
                    )
                ).all()
            )
            for name, rid in ids.items():
                if name in wanted_names and rid not in held:
                    s.add(UserRole(tenant_id=tenant, user_id=user_id, role_id=rid))
                    granted.append(name)
                elif name not in wanted_names and rid in held:
                    if name == BuiltinRole.admin.value and await active_admins(s, tenant) <= 1:
                        continue
                    await s.execute(
                        delete(UserRole).where(UserRole.user_id == user_id, UserRole.role_id == rid)
                    )
                    revoked.append(name)
        if granted or revoked:
            await self._accounts.user_changed(user_id)
            await self._audit.record(
                events.FEDERATION_ROLES_CHANGED,
                ctx,
                subject=user_id,
                details={"connector": connector.id, "granted": granted, "revoked": revoked},
            )

    # ---- the account page ------------------------------------------------------------------

    async def links(self, user_id: uuid.UUID) -> list[LinkedIdentity]:
        """The upstream identities linked to a user, oldest first."""
        async with self._db.single() as conn:
            rows = (
                await conn.execute(
                    select(
                        FederatedIdentity.id,
                        FederatedIdentity.connector_id,
                        ConnectorRow.name,
                        FederatedIdentity.email,
                        FederatedIdentity.created_at,
                        FederatedIdentity.last_used_at,
                    )
                    .join(ConnectorRow, ConnectorRow.id == FederatedIdentity.connector_id)
                    .where(FederatedIdentity.user_id == user_id)
                    .order_by(FederatedIdentity.created_at)
                )
            ).all()
        return [LinkedIdentity(*row) for row in rows]

    async def unlink(self, user_id: uuid.UUID, link_id: uuid.UUID, ctx: RequestContext) -> None:
        """Remove a linked identity, unless it is the last way to sign in (no password and no
        other link). Raises LinkNotFound or LastSignInMethod."""
        links = await self.links(user_id)
        target = next((link for link in links if link.id == link_id), None)
        if target is None:
            raise LinkNotFound
        if len(links) == 1 and not await self._accounts.credentials.has_password(user_id):
            raise LastSignInMethod
        async with self._db.single() as conn:
            await conn.execute(
                delete(FederatedIdentity).where(
                    FederatedIdentity.id == link_id, FederatedIdentity.user_id == user_id
                )
            )
        await self._audit.record(
            events.FEDERATION_UNLINKED,
            ctx,
            subject=user_id,
            details={"connector": target.connector_id},
        )


def _reason(exc: FederationError) -> str:
    reason = getattr(exc, "reason", None) or (str(exc.args[0]) if exc.args else "")
    return f"{exc.problem.slug}:{reason}"[:120] if reason else exc.problem.slug


def _clean(text: str) -> str:
    return CONTROL_CHARACTERS.sub("", text).strip()


def lookup(doc: Any, path: str) -> Any:
    """The value at ``path`` in a JSON document: a JSON pointer (RFC 6901, "/a/0/b") or a
    dotted path ("a.0.b"); None when there is nothing there."""
    if path.startswith("/"):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
    else:
        parts = path.split(".")
    for part in parts:
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return doc


def mapped(doc: dict[str, Any], mapping: dict[str, str]) -> Claims:
    """The claims we keep (OIDC Core 5.1's sub, email, email_verified, name, and groups),
    found where ``mapping`` says. Raises FederationTokenInvalid without a subject."""
    subject = lookup(doc, mapping["subject"])
    if isinstance(subject, bool) or not isinstance(subject, str | int) or subject == "":
        raise FederationTokenInvalid("no_subject")
    email = lookup(doc, mapping["email"])
    name = lookup(doc, mapping["name"])
    verified = lookup(doc, mapping["email_verified"])
    if isinstance(verified, str):  # some providers send "true"
        verified = verified.lower() == "true"
    groups = lookup(doc, mapping["groups"])
    if isinstance(groups, str):
        groups = [groups]
    return Claims(
        subject=str(subject)[:255],
        email=email.strip() if isinstance(email, str) and email.strip() else None,
        email_verified=verified is True,
        name=_clean(name)[:200] or None if isinstance(name, str) else None,
        groups=tuple(g for g in groups if isinstance(g, str))[:100]
        if isinstance(groups, list)
        else (),
    )


async def github_claims(upstream: Upstream, connector: Connector, access_token: str) -> Claims:
    """Who a GitHub access token belongs to: ``GET /user`` (its numeric ``id`` is the
    subject: a login name can be renamed and then taken by someone else) and
    ``GET /user/emails`` (the primary address, verified only if GitHub says so)."""
    user = await upstream.api(connector.endpoint("userinfo_url"), access_token, GITHUB_JSON)
    if not isinstance(user, dict):
        raise FederationTokenInvalid("userinfo")
    subject = user.get("id")
    if isinstance(subject, bool) or not isinstance(subject, int):
        raise FederationTokenInvalid("no_subject")
    name = user.get("name") or user.get("login")
    email: str | None = None
    verified = False
    try:
        emails = await upstream.api(connector.endpoint("emails_url"), access_token, GITHUB_JSON)
    except FederationTokenInvalid:  # no user:email scope granted: the profile's, unverified
        emails = []
        public = user.get("email")
        email = public if isinstance(public, str) else None
    entries = [e for e in emails if isinstance(e, dict)] if isinstance(emails, list) else []
    primary = next((e for e in entries if e.get("primary") is True), None)
    if primary is not None and isinstance(primary.get("email"), str):
        email = primary["email"]
        verified = primary.get("verified") is True
    return mapped(
        {"id": subject, "email": email, "verified": verified, "name": name},
        {
            "subject": "id",
            "email": "email",
            "email_verified": "verified",
            "name": "name",
            "groups": "groups",
        },
    )
