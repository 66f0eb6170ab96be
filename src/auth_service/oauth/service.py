"""The provider, wired: what the HTTP faces (``oauth.routes``, the pages in ``ui``) and the
CLI hold. Each attribute is one part; the methods here are the client-authenticated
endpoints, which share the registries."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auth_service import i18n
from auth_service.accounts.assurance import Assurance
from auth_service.accounts.guard import AttemptGuard
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.config.settings import Settings
from auth_service.db.engine import Database
from auth_service.flows.store import FlowStore
from auth_service.keys.service import KeyService
from auth_service.oauth import client_auth, rfc8414, rfc9126
from auth_service.oauth.authorization import PendingAuthorizations
from auth_service.oauth.authorize_steps import AuthorizeSteps
from auth_service.oauth.client_auth.private_key_jwt import ALGORITHMS as ASSERTION_ALGORITHMS
from auth_service.oauth.client_auth.private_key_jwt import PrivateKeyJwt
from auth_service.oauth.client_cache import ClientCache
from auth_service.oauth.client_keys import ClientKeys
from auth_service.oauth.client_metadata import ClientPolicy
from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.codes import CodeStore
from auth_service.oauth.consent import ConsentStore
from auth_service.oauth.device_entry import DeviceEntry
from auth_service.oauth.dpop_bindings import DPoPBindings
from auth_service.oauth.dpop_endpoints import DPoPEndpoints
from auth_service.oauth.end_session import EndSession
from auth_service.oauth.errors import InvalidClient
from auth_service.oauth.grants import GrantContext
from auth_service.oauth.id_token import IdTokens
from auth_service.oauth.issuance import TokenIssuer
from auth_service.oauth.replay import SeenOnce
from auth_service.oauth.request import EndpointRequest
from auth_service.oauth.rfc7009 import Revocation, RevokedAccessTokens
from auth_service.oauth.rfc7591 import Registration
from auth_service.oauth.rfc7662 import Introspection
from auth_service.oauth.rfc8628 import DeviceAuthorizations
from auth_service.oauth.rfc9068 import AccessTokens
from auth_service.oauth.rfc9126 import PushedRequests
from auth_service.oauth.rfc9449 import ALGORITHMS as DPOP_ALGORITHMS
from auth_service.oauth.rfc9449 import DPoP
from auth_service.oauth.scopes import CLAIMS_BY_SCOPE, supported_scopes
from auth_service.oauth.subjects import PURPOSE as PAIRWISE_PURPOSE
from auth_service.oauth.subjects import Subjects
from auth_service.oauth.token_endpoint import TokenEndpoint
from auth_service.oauth.userinfo import UserInfo
from auth_service.security.aead import MasterKey
from auth_service.security.dpop import ProofVerifier
from auth_service.security.invalidation import InvalidationBus
from auth_service.sessions.grants import GrantSessions
from auth_service.sessions.revocation import SessionRevoker
from auth_service.sessions.service import SessionService


@dataclass(frozen=True)
class DiscoveryDocument:
    """The metadata document's bytes (as ``JSONResponse`` renders them) and a strong ETag."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, doc: dict[str, Any]) -> DiscoveryDocument:
        body = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        raw = body.encode()
        return cls(raw, '"' + hashlib.sha256(raw).hexdigest()[:32] + '"')


class OAuthService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        keys: KeyService,
        sessions: SessionService,
        revoker: SessionRevoker,
        flows: FlowStore,
        audit: AuditService,
        tenant_id: Callable[[], uuid.UUID],
        master_key: MasterKey | None = None,
        guard: AttemptGuard | None = None,
        bus: InvalidationBus | None = None,
    ) -> None:
        self._settings = settings
        self._discovery: tuple[Settings, DiscoveryDocument] | None = None
        self.issuer = settings.issuer
        self.grants = GrantSessions(db, settings.tokens.refresh_idle_ttl_seconds)
        self.replay = SeenOnce(db)
        self.client_keys = ClientKeys(self.settings)
        self.auth_methods = client_auth.registry(
            PrivateKeyJwt(
                self.client_keys,
                self.replay,
                self._assertion_audiences,
                lambda: self._settings.tokens.clock_skew_seconds,
            )
        )
        # Authenticated clients cached per worker on the invalidation bus (ADR 0761).
        cache: ClientCache[Client] | None = ClientCache(bus) if bus is not None else None
        self.clients = ClientService(
            db, audit, self.client_policy, tenant_id, self._secret_overlap, cache
        )
        self.consents = ConsentStore(db, self.clients, self.grants, audit)
        self.access_tokens = AccessTokens(keys, self.issuer)
        self.id_tokens = IdTokens(keys, self.issuer)
        codes = CodeStore(db)
        # OIDC Core 8.1: without a master key (never when built by services) pairwise
        # subjects would change with every process, so that key is random and says so.
        self.subjects = Subjects(
            master_key.derive(PAIRWISE_PURPOSE) if master_key else secrets.token_bytes(32)
        )
        self.devices = DeviceAuthorizations(db, self.settings)
        revoked = RevokedAccessTokens(db)
        grant_context = GrantContext(
            self.settings,
            TokenIssuer(self.access_tokens, self.id_tokens, self.subjects),
            codes,
            self.grants,
            sessions,
            revoker,
            audit,
            self.devices,
            revoked,
        )
        self.grant_types = grant_context.registry()
        self.token_endpoint = TokenEndpoint(self.clients, self.auth_methods, self.grant_types)
        self.device_entry = DeviceEntry(
            self.devices, self.clients, self.consents, guard, audit, self.settings
        )
        self.pushed = PushedRequests(flows, self.clients, self.settings)
        self.authorize = AuthorizeSteps(
            self.clients,
            self.consents,
            codes,
            PendingAuthorizations(flows),
            self.settings,
            self.issuer,
            self.pushed,
        )
        leeway = settings.tokens.clock_skew_seconds
        self.introspection = Introspection(
            self.access_tokens, revoked, self.grants, leeway, self.subjects
        )
        self.revocation = Revocation(
            self.access_tokens, revoked, self.grants, revoker, audit, leeway
        )
        self.userinfo = UserInfo(self.access_tokens, revoked, sessions, leeway)
        self.end_session = EndSession(self.id_tokens, self.clients, sessions, self.subjects)
        self.registration = Registration(self.clients)
        nonce_key = master_key.derive("oauth-dpop-nonce") if master_key else None
        # One proof verifier (replay store, nonces, the ``oauth.dpop_nonce`` setting) for
        # the OAuth endpoints and the JSON API (``web.dpop``).
        self.dpop_proofs = ProofVerifier(self.replay, self.settings, nonce_key, tenant_id)
        self.dpop = DPoPEndpoints(
            DPoP(self.dpop_proofs),
            DPoPBindings(db),
            self.grants,
            self.clients,
            self.access_tokens,
            self.userinfo,
        )

    def settings(self) -> Settings:
        return self._settings

    def apply_settings(self, settings: Settings) -> None:
        """Hot reload: lifetimes, scopes, registration and the secret overlap apply from the
        next request; the issuer and signing algorithms need a restart."""
        self._settings = settings
        self.grants.idle_seconds = settings.tokens.refresh_idle_ttl_seconds

    def _assertion_audiences(self) -> frozenset[str]:
        """What a client assertion's aud may be: the issuer; the endpoint URLs too unless
        turned off (ADR 0730)."""
        if not self._settings.oauth.client_assertion_legacy_audiences:
            return frozenset({self.issuer})
        return frozenset({self.issuer, self.issuer + rfc8414.TOKEN, self.issuer + rfc9126.PAR})

    def _secret_overlap(self) -> int:
        return self._settings.oauth.secret_rotation_overlap_seconds

    def client_policy(self) -> ClientPolicy:
        oauth = self._settings.oauth
        return ClientPolicy(
            grant_types=tuple(self.grant_types),
            auth_methods=tuple(self.auth_methods),
            id_token_algs=tuple(a.value for a in oauth.id_token_signing_alg_values),
            scopes=supported_scopes(oauth.scopes),
        )

    async def delete_client(self, client_id: str, ctx: RequestContext) -> None:
        """Remove a client and end every grant it holds. Raises ClientNotFound."""
        await self.clients.delete(client_id, ctx)
        await self.grants.revoke_all_client_grants(client_id, reason="client_deleted")

    # ---- client-authenticated endpoints ----------------------------------------------------

    async def token(self, request: EndpointRequest) -> dict[str, Any]:
        return await self.dpop.token(request, lambda: self.token_endpoint.token(request))

    async def introspect(self, request: EndpointRequest) -> dict[str, Any]:
        """RFC 7662 section 2.1: the caller must authenticate; a public client's bare
        ``client_id`` proves nothing, so only confidential clients may introspect."""
        client = await self.token_endpoint.client(request)
        if client.public:
            raise InvalidClient("introspection needs a confidential client")
        return await self.introspection.answer(request, client)

    async def push_authorization_request(self, request: EndpointRequest) -> dict[str, Any]:
        """RFC 9126 section 2: authenticated as at the token endpoint."""
        client = await self.token_endpoint.client(request)
        return await self.pushed.push(request, client)

    async def device_authorization(self, request: EndpointRequest) -> dict[str, Any]:
        """RFC 8628 section 3.1: authenticated as at the token endpoint."""
        client = await self.token_endpoint.client(request)
        return await self.devices.start(request, client)

    async def revoke(self, request: EndpointRequest) -> None:
        client = await self.token_endpoint.client(request)
        await self.revocation.revoke(request, client)

    async def register(
        self, body: Any, authorization: str | None, ctx: RequestContext
    ) -> dict[str, Any]:
        oauth = self._settings.oauth
        token = oauth.registration_initial_access_token
        return await self.registration.register(
            body,
            authorization,
            enabled=oauth.dynamic_registration,
            initial_token=token.get_secret_value() if token else None,
            ctx=ctx,
        )

    def discovery_document(self) -> DiscoveryDocument:
        """The discovery document as served: serialised once per settings object (hot reload
        hands a new one to ``apply_settings``), with a strong ETag of its bytes."""
        cached = self._discovery
        if cached is not None and cached[0] is self._settings:
            return cached[1]
        document = DiscoveryDocument.of(self.discovery())
        self._discovery = (self._settings, document)
        return document

    def discovery(self) -> dict[str, Any]:
        oauth = self._settings.oauth
        claims = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid"]
        claims += [c for cs in CLAIMS_BY_SCOPE.values() for c in cs]
        doc = rfc8414.metadata(
            self.issuer,
            rfc8414.Capabilities(
                grant_types=self.grant_types,
                auth_methods=self.auth_methods,
                introspection_auth_methods=[m for m in self.auth_methods if m != "none"],
                id_token_algs=[a.value for a in oauth.id_token_signing_alg_values],
                scopes=supported_scopes(oauth.scopes),
                claims=claims,
                ui_locales=i18n.languages(),
                acr_values=[a.value for a in Assurance],
                registration=oauth.dynamic_registration,
            ),
        )
        doc.update(self.pushed.metadata(self.issuer))
        doc.update(self.devices.metadata(self.issuer))
        doc["dpop_signing_alg_values_supported"] = list(DPOP_ALGORITHMS)
        # OIDC Back-Channel Logout 1.0 section 2.1: logout tokens carry sid, always.
        doc["backchannel_logout_supported"] = True
        doc["backchannel_logout_session_supported"] = True
        # RFC 8414 section 2: the algorithms private_key_jwt accepts.
        for endpoint in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
            doc[f"{endpoint}_auth_signing_alg_values_supported"] = list(ASSERTION_ALGORITHMS)
        return doc
