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
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Insert, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from auth_service.accounts.assurance import Assurance
from auth_service.accounts.credentials import VerifiedLogin
from auth_service.accounts.errors import EmailTaken, InvalidEmail
from auth_service.accounts.guard import AttemptGuard
from auth_service.accounts.service import AccountService
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.federation import id_token
from auth_service.federation.connectors import Connector, ConnectorStore, ConnectorType
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
from auth_service.federation.upstream import Metadata, Upstream
from auth_service.flows.errors import FlowExpired
from auth_service.flows.store import Flow, FlowKind, FlowStore
from auth_service.security.ratelimit import Limiter
from auth_service.security.text import CONTROL_CHARACTERS

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
            return await self._begin(connector_id, binding, continuation, link_user)
        except FederationError as exc:
            await self._failed(connector_id, exc, ctx)
            raise

    async def _begin(
        self,
        connector_id: str,
        binding: str,
        continuation: Continuation,
        link_user: uuid.UUID | None,
    ) -> str:
        connector = await self.connectors.get(connector_id)
        meta = await self._metadata(connector)
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
        separator = "&" if "?" in meta.authorization_endpoint else "?"
        return meta.authorization_endpoint + separator + urlencode(query)

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
        claims = await self._claims(connector, code, flow, params.get("iss"))
        continuation = Continuation(None, str(flow.state.get("return_to") or ""))
        if flow.state.get("link_user"):
            user = uuid.UUID(str(flow.state["link_user"]))
            await self._link_signed_in(user, connector, claims, ctx)
            return FederatedSignIn(None, continuation, False, linked_to=user)
        user_id, created = await self._account(connector, claims, ctx)
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
        self, user_id: uuid.UUID, connector: Connector, claims: Claims, ctx: RequestContext
    ) -> None:
        """Link for a user who proved their account by signing in (any email: the user
        holds both accounts). An identity linked to someone else stays theirs."""
        linked = await self._linked_user(connector.id, claims.subject)
        if linked is None:
            await self._link(user_id, connector, claims, ctx)
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

    async def _claims(self, connector: Connector, code: str, flow: Flow, iss: str | None) -> Claims:
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
        keys = await self.upstream.jwks(meta.jwks_uri, id_token.key_id(tokens.id_token))
        expected = id_token.Expected(meta.issuer, connector.client_id, nonce)
        verified = id_token.validate(tokens.id_token, keys, expected, now=time.time())
        merged = dict(verified)
        if tokens.access_token is not None:
            info = await self.upstream.userinfo(meta, tokens.access_token)
            # OIDC Core 5.3.2: userinfo of another subject must not be used.
            if info.get("sub") == verified["sub"]:
                merged = {**info, **verified}
        return _mapped(merged)

    async def _account(
        self, connector: Connector, claims: Claims, ctx: RequestContext
    ) -> tuple[uuid.UUID, bool]:
        """The local account: the linked one; or one whose email the provider asserts as
        verified, when the connector is trusted for email; or a new one (if allowed)."""
        linked = await self._linked_user(connector.id, claims.subject)
        if linked is not None:
            return linked, False
        if not claims.email:
            raise EmailMissing
        tenant = self._accounts.tenant_id
        existing = await self._accounts.identities.by_email(tenant, claims.email)
        if existing is not None:
            if not (claims.email_verified and connector.trust_email):
                raise EmailCollision
            await self._link(existing.id, connector, claims, ctx)
            return existing.id, False
        if not connector.allow_signup:
            raise SignupClosed
        try:
            identity = await self._accounts.registration.create_federated(
                claims.email,
                claims.name,
                verified=claims.email_verified and connector.trust_email,
                ctx=ctx,
                with_rows=lambda new: [self._link_row(new.id, connector, claims)],
                details={"connector": connector.id},
            )
        except InvalidEmail:
            raise EmailMissing from None
        except (EmailTaken, IntegrityError):
            raise EmailCollision from None
        return identity.id, True

    async def _linked_user(self, connector_id: str, subject: str) -> uuid.UUID | None:
        async with self._db.single() as conn:
            return await conn.scalar(
                update(FederatedIdentity)
                .where(
                    FederatedIdentity.connector_id == connector_id,
                    FederatedIdentity.subject == subject,
                )
                .values(last_used_at=utcnow())
                .returning(FederatedIdentity.user_id)
            )

    def _link_row(self, user_id: uuid.UUID, connector: Connector, claims: Claims) -> Insert:
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
        )

    async def _link(
        self, user_id: uuid.UUID, connector: Connector, claims: Claims, ctx: RequestContext
    ) -> None:
        try:
            async with self._db.single() as conn:
                await conn.execute(self._link_row(user_id, connector, claims))
        except IntegrityError:
            raise EmailCollision from None
        await self._audit.record(
            events.FEDERATION_LINKED, ctx, subject=user_id, details={"connector": connector.id}
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


def _mapped(claims: dict[str, Any]) -> Claims:
    """The claims we keep (OIDC Core 5.1): sub, email, email_verified, name."""
    email = claims.get("email")
    name = claims.get("name")
    verified = claims.get("email_verified")
    if isinstance(verified, str):  # some providers send "true"
        verified = verified.lower() == "true"
    return Claims(
        subject=str(claims["sub"]),
        email=email.strip() if isinstance(email, str) and email.strip() else None,
        email_verified=verified is True,
        name=_clean(name)[:200] or None if isinstance(name, str) else None,
    )
