"""The service graph: built once from settings, shared by the HTTP app and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from redis.asyncio import Redis

from auth_service.accounts.guard import AttemptGuard
from auth_service.accounts.invalidation import IdentityInvalidation
from auth_service.accounts.service import AccountService, UnknownTenant
from auth_service.audit.service import AuditService
from auth_service.config.hooks import ReloadHooks
from auth_service.config.redis_url import parse_redis_url
from auth_service.config.safety import production_refusals
from auth_service.config.settings import Environment, Settings
from auth_service.db.engine import Database, create_engine
from auth_service.db.revision import current_revision, head_revision
from auth_service.federation.connectors import ConnectorStore
from auth_service.federation.service import FederationService
from auth_service.federation.upstream import Upstream
from auth_service.flows.signin import SignIn
from auth_service.flows.store import FlowStore
from auth_service.housekeeping import schedule
from auth_service.housekeeping.purge import Housekeeping
from auth_service.jobs.admin import JobAdmin
from auth_service.jobs.queue import JobQueue
from auth_service.jobs.upkeep import JobUpkeep
from auth_service.keys.service import KeyService
from auth_service.keys.tokens import AccessTokenService
from auth_service.mail.service import MailService, build_transport
from auth_service.mfa.service import MfaService
from auth_service.oauth.backchannel import install as install_backchannel_logout
from auth_service.oauth.service import OAuthService
from auth_service.privacy.deletion import AccountDeletion
from auth_service.security.aead import MasterKey, MasterKeyError, load_or_create_development_key
from auth_service.security.invalidation import InvalidationBus, RedisBus
from auth_service.security.lockout import LockoutStore, MemoryLockoutStore, RedisLockoutStore
from auth_service.security.passwords import PasswordHasher
from auth_service.security.ratelimit import RateLimiter
from auth_service.security.redis_connect import redis_client
from auth_service.sessions.identity_cache import IdentityCache
from auth_service.sessions.revocation import SessionRevoker
from auth_service.sessions.service import SessionService
from auth_service.webhooks.delivery import install as install_webhooks
from auth_service.webhooks.service import WebhookService

log = structlog.get_logger(__name__)


class StartupError(Exception):
    """The service must not start; the message says why and what to do."""


def load_master_key(settings: Settings) -> MasterKey:
    if settings.master_key is not None:
        try:
            return MasterKey.from_text(settings.master_key.get_secret_value())
        except MasterKeyError as exc:
            raise StartupError(f"master_key: {exc}") from None
    if settings.env is Environment.production:
        raise StartupError(
            "production needs a master key: set AUTH_MASTER_KEY_FILE to a file holding "
            "32 random bytes in base64url (python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')"
        )
    return load_or_create_development_key(settings.data_dir)


def check_production_safety(settings: Settings) -> None:
    """Refuse the settings that must never reach production (the rules: config.safety)."""
    problems = production_refusals(settings)
    if problems:
        raise StartupError("refusing to start in production with " + ", ".join(problems))


@dataclass
class Services:
    settings: Settings
    db: Database
    redis: Redis | None
    master_key: MasterKey
    hasher: PasswordHasher
    limiter: RateLimiter
    lockout: LockoutStore
    audit: AuditService
    jobs: JobQueue
    job_upkeep: JobUpkeep
    job_admin: JobAdmin
    mail: MailService
    keys: KeyService
    access_tokens: AccessTokenService
    accounts: AccountService
    sessions: SessionService
    flows: FlowStore
    signin: SignIn
    oauth: OAuthService
    mfa: MfaService
    webhooks: WebhookService
    housekeeping: Housekeeping
    deletion: AccountDeletion
    federation: FederationService
    # Per-worker caches forget what another process changed (ADR 0430); in-process (and
    # never healthy: the caches stay off) without Redis.
    bus: InvalidationBus = field(default_factory=InvalidationBus)

    async def check_schema(self) -> None:
        current = await current_revision(self.db.engine)
        if current != head_revision():
            raise StartupError(
                f"database schema is at {current or 'nothing'}, expected {head_revision()}: "
                "run `auth-service migrate` first"
            )

    async def start(self) -> None:
        """Everything the HTTP server needs before its first request."""
        await self.check_schema()
        try:
            await self.accounts.start()
        except UnknownTenant as exc:
            raise StartupError(str(exc)) from None
        await self.keys.ensure_keys()
        await self.hasher.warm_up()
        await self.bus.start()

    def register_reload_hooks(self, hooks: ReloadHooks) -> None:
        """Each service takes its part of reloaded settings. All are reference swaps that
        cannot fail for settings that validated; ``settings`` goes last."""
        hooks.register("rate_limits", lambda new: self.limiter.apply_settings(new.rate_limits))
        hooks.register("lockout", self._apply_lockout)
        hooks.register("passwords", lambda new: self.hasher.apply_settings(new.passwords))
        hooks.register("keys", lambda new: self.keys.apply_settings(new.tokens))
        hooks.register("access_tokens", lambda new: self.access_tokens.apply_settings(new.tokens))
        hooks.register("sessions", lambda new: self.sessions.apply_settings(new.tokens))
        hooks.register("accounts", self.accounts.apply_settings)
        hooks.register("oauth", self.oauth.apply_settings)
        hooks.register("mfa", self.mfa.apply_settings)
        hooks.register("webhooks", lambda new: self.webhooks.apply_settings(new.webhooks))
        hooks.register("settings", self._apply_settings)

    def _apply_lockout(self, new: Settings) -> None:
        self.lockout.settings = new.lockout

    def _apply_settings(self, new: Settings) -> None:
        self.settings = new

    async def close(self) -> None:
        self.hasher.close()
        await self.bus.stop()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.dispose()


def build_services(settings: Settings) -> Services:
    master_key = load_master_key(settings)
    check_production_safety(settings)
    db = Database(create_engine(settings))
    redis_url = settings.redis.url.get_secret_value() if settings.redis.url else None
    ca_cert = settings.redis.ssl_ca_cert
    try:
        redis = redis_client(redis_url, ca_cert) if redis_url else None
        limiter = RateLimiter.create(settings.rate_limits, redis_url, ca_cert)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    lockout: LockoutStore = (
        RedisLockoutStore(settings.lockout, redis)
        if redis is not None
        else MemoryLockoutStore(settings.lockout)
    )
    bus = (
        RedisBus(redis, parse_redis_url(redis_url).db)
        if redis is not None and redis_url is not None
        else InvalidationBus()
    )
    hasher = PasswordHasher(
        settings.passwords,
        settings.server.workers,
        master_key,
        production=settings.env is Environment.production,
    )
    audit = AuditService(db)
    # Kinds register on the queue where their handler is built (mail below; webhooks, ...).
    jobs = JobQueue(db, settings.jobs, master_key)
    webhooks = install_webhooks(db, settings.webhooks, master_key, audit, jobs)
    mail = MailService(settings.mail, build_transport(settings.mail, settings.outbox_dir), jobs)
    keys = KeyService(
        db, master_key, settings.tokens, audit, settings.oauth.id_token_signing_alg_values
    )
    access = AccessTokenService(keys, settings.tokens, settings.issuer)
    invalidation = IdentityInvalidation(bus)
    revoker = SessionRevoker(db, invalidation)
    accounts = AccountService(
        db, settings, hasher, limiter, lockout, audit, mail, revoker, invalidation
    )
    sessions = SessionService(
        db,
        settings.tokens,
        accounts.identities,
        access,
        limiter,
        audit,
        revoker,
        IdentityCache(bus),
    )
    flows = FlowStore(db)
    # The same limiter and lockout stores as the password: one count for every door.
    guard = AttemptGuard(limiter, lockout, audit)
    mfa = MfaService(db, settings, master_key, audit, mail, guard, accounts.identities)
    signin = SignIn(
        accounts.credentials,
        accounts.identities,
        sessions,
        flows,
        mfa,
        lambda: mfa.settings,
        lambda: accounts.tenant_id,
    )
    oauth = OAuthService(
        db,
        settings,
        keys,
        sessions,
        revoker,
        flows,
        audit,
        lambda: accounts.tenant_id,
        master_key=master_key,
        guard=guard,
        bus=bus,
    )
    # Every browser session that ends tells its clients (OIDC Back-Channel Logout).
    revoker.listener = install_backchannel_logout(
        oauth.clients, keys, settings.issuer, audit, jobs, lambda: webhooks.settings
    )
    upkeep = JobUpkeep(db, jobs)
    deletion = AccountDeletion(
        db, settings, master_key, audit, accounts.credentials, revoker, mail, invalidation
    )
    housekeeping = Housekeeping(db, settings, deletion=deletion)
    schedule.register(jobs, upkeep, housekeeping, audit, settings)
    federation = FederationService(
        db,
        ConnectorStore(db, master_key, audit),
        Upstream.of(settings.federation),
        flows,
        accounts,
        audit,
        guard,
        lambda: mfa.settings.server.public_url,
    )
    return Services(
        settings,
        db,
        redis,
        master_key,
        hasher,
        limiter,
        lockout,
        audit,
        jobs,
        upkeep,
        JobAdmin(db, jobs, audit),
        mail,
        keys,
        access,
        accounts,
        sessions,
        flows,
        signin,
        oauth,
        mfa,
        webhooks,
        housekeeping,
        deletion,
        federation,
        bus,
    )
