"""Settings models.

Every tunable of the service lives here, grouped by concern. The models are plain
pydantic models; ``config.loader`` assembles them from defaults, a YAML profile,
secret files and the environment. Nothing in the service reads a module-level
settings object: a ``Settings`` instance is passed to ``create_app``.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from auth_service.config.backup import BackupSettings, DrSettings
from auth_service.config.federation import FederationSettings
from auth_service.config.mfa import MfaSettings
from auth_service.config.sections import AlertingSettings, HealthSettings, Section
from auth_service.config.tls import (
    PostgresSslMode,
    ServerTLSSettings,
    check_redis,
    check_root_cert,
)


class Environment(StrEnum):
    development = "development"
    staging = "staging"
    production = "production"


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    management_host: str = "127.0.0.1"
    management_port: int = Field(
        9000, ge=0, le=65535, description="0 serves management on the public port"
    )
    workers: int = Field(1, ge=1, le=64)
    public_url: str = "http://127.0.0.1:8000"
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="CIDRs of proxies whose X-Forwarded-For is believed",
    )
    cors_origins: list[str] = Field(default_factory=list)
    cors_allow_credentials: bool = False
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_import_bytes: int = Field(
        1024**3,
        ge=1024,
        le=64 * 1024**3,
        description="body limit of POST /v1/admin/users:import (streamed NDJSON; "
        "about 5 million accounts a GiB)",
    )
    graceful_shutdown_seconds: float = Field(20.0, ge=0, le=600)
    tls: ServerTLSSettings = Field(default_factory=ServerTLSSettings)

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return v.rstrip("/")


class DatabaseSettings(Section):
    url: SecretStr | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file under data_dir"
    )
    pool_size: int = Field(10, ge=1, le=200)
    max_overflow: int = Field(10, ge=0, le=200)
    pool_timeout_seconds: float = Field(10.0, gt=0, le=120)
    statement_timeout_ms: int = Field(10_000, ge=0)
    echo: bool = False
    ssl_mode: PostgresSslMode = Field(
        PostgresSslMode.prefer,
        description="PostgreSQL TLS, libpq's sslmode: disable, prefer, require, verify-ca, "
        "verify-full (also given to pg_dump, pg_basebackup... as PGSSLMODE)",
    )
    ssl_root_cert: Path | None = Field(
        None, description="PEM CA PostgreSQL's certificate must chain to (verify-ca/-full)"
    )

    @model_validator(mode="after")
    def _ssl(self) -> DatabaseSettings:
        check_root_cert(self.ssl_mode, self.ssl_root_cert)
        return self


class RedisSettings(Section):
    url: SecretStr | None = Field(
        None,
        description="redis://, rediss:// (TLS) or "
        "redis+sentinel://host:port[,host:port]/service_name[/db]; unset means in-process state",
    )
    ssl_ca_cert: Path | None = Field(
        None, description="PEM CA a rediss:// server's certificate must chain to"
    )

    @model_validator(mode="after")
    def _url(self) -> RedisSettings:
        check_redis(self.url.get_secret_value() if self.url else None, self.ssl_ca_cert)
        return self


class SigningAlgorithm(StrEnum):
    ES256 = "ES256"
    RS256 = "RS256"
    EdDSA = "EdDSA"


class TokenSettings(Section):
    issuer: str | None = Field(None, description="default: server.public_url")
    audience: str = "auth-service"
    algorithm: SigningAlgorithm = SigningAlgorithm.ES256
    access_token_ttl_seconds: int = Field(900, ge=30, le=24 * 3600)
    refresh_absolute_ttl_seconds: int = Field(30 * 24 * 3600, ge=60)
    refresh_idle_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)
    refresh_reuse_grace_seconds: int = Field(0, ge=0, le=300)
    clock_skew_seconds: int = Field(30, ge=0, le=300)
    key_cache_seconds: float = Field(30.0, gt=0, le=3600)
    email_verification_ttl_seconds: int = Field(24 * 3600, ge=60)
    password_reset_ttl_seconds: int = Field(30 * 60, ge=60, le=24 * 3600)


class PasswordSettings(Section):
    argon2_memory_cost_kib: int = Field(19456, ge=8, le=4 * 1024 * 1024)
    argon2_time_cost: int = Field(2, ge=1, le=100)
    argon2_parallelism: int = Field(1, ge=1, le=64)
    min_length: int = Field(8, ge=1, le=1024)
    max_length: int = Field(128, ge=8, le=4096)
    reject_common: bool = True
    hash_concurrency: int = Field(
        0,
        ge=0,
        le=256,
        description="threads hashing at once per worker; 0 = CPU count / workers (at least 1)",
    )
    hash_pool: Literal["auto", "threads", "processes"] = Field(
        "auto",
        description="where argon2id runs: child processes of each worker (own GIL, nice +10: "
        "the event loop never waits for a hash to hand the GIL back; hash_concurrency of them "
        "per worker), or threads of the worker; auto = processes when env is production",
    )
    hash_queue_limit: int = Field(
        64, ge=1, description="logins waiting for a hash thread before new ones are shed (503)"
    )
    hash_max_wait_seconds: float = Field(
        0.5,
        ge=0,
        le=60,
        description="shed a login (503) when the hashes queued ahead of it would take longer "
        "than this, from the recent hash time; 0 = only hash_queue_limit",
    )

    @model_validator(mode="after")
    def _lengths(self) -> PasswordSettings:
        if self.min_length > self.max_length:
            raise ValueError("min_length must not exceed max_length")
        if self.argon2_memory_cost_kib < 8 * self.argon2_parallelism:
            raise ValueError("argon2_memory_cost_kib must be at least 8 x argon2_parallelism")
        return self


class RateLimitSettings(Section):
    """Limits use the `limits` notation, e.g. "30/minute" or "10 per hour"."""

    enabled: bool = True
    storage: Literal["auto", "memory", "redis"] = "auto"
    login_per_ip: str = "60/minute"
    login_per_account: str = "20/minute"
    register_per_ip: str = "20/hour"
    forgot_per_ip: str = "20/hour"
    forgot_per_account: str = "5/hour"
    reset_per_ip: str = "30/hour"
    refresh_per_ip: str = "600/minute"
    verify_per_ip: str = "60/hour"
    device_code_per_network: str = Field(
        "30/hour",
        description="user codes entered on /device from one client network (RFC 8628 5.1)",
    )
    device_code_per_session: str = Field(
        "10/hour", description="user codes entered on /device by one browser"
    )


class LockoutSettings(Section):
    """Lockout per account and client network, with an account-wide backstop (ADR 0013)."""

    enabled: bool = True
    threshold: int = Field(
        5, ge=1, le=1000, description="failures from one client network before it is locked"
    )
    account_threshold: int = Field(
        50, ge=1, le=100_000, description="failures from all networks before every one is locked"
    )
    ipv4_prefix: int = Field(24, ge=8, le=32, description="an IPv4 client network is its /N")
    ipv6_prefix: int = Field(64, ge=16, le=128, description="an IPv6 client network is its /N")
    base_seconds: float = Field(30.0, gt=0)
    max_seconds: float = Field(15 * 60.0, gt=0)
    reset_after_seconds: float = Field(24 * 3600.0, gt=0, description="failure memory")


class MailSettings(Section):
    backend: Literal["outbox", "smtp"] = "outbox"
    from_address: str = "auth-service <no-reply@localhost>"
    smtp_host: str = "localhost"
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_tls: bool = False
    smtp_validate_certs: bool = True
    smtp_timeout_seconds: float = Field(10.0, gt=0)
    max_attempts: int = Field(
        10,
        ge=1,
        le=50,
        description="delivery attempts of one message (a job of kind mail); with the default "
        "retry_base_seconds, 10 ride out about 5 to 8 minutes of SMTP outage",
    )
    retry_base_seconds: float = Field(
        1.0, gt=0, description="first retry delay of a message; doubles per attempt (jitter)"
    )
    queue_size: int = Field(
        1000,
        ge=1,
        description="deprecated, no effect: mail goes through the durable job queue (jobs)",
    )


class JobSettings(Section):
    """The durable job queue in the service's database (docs/operations/jobs.md)."""

    workers: int = Field(
        2,
        ge=0,
        le=64,
        description="jobs each serving process runs at once; 0: none (run `auth-service jobs "
        "work` apart)",
    )
    poll_interval_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="how often an idle worker looks for jobs enqueued by other processes",
    )
    lease_seconds: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="visibility timeout: a running job whose worker stopped renewing its lease "
        "for this long is claimable again (renewed every third of it)",
    )
    job_timeout_seconds: float = Field(
        300.0, gt=0, le=24 * 3600, description="an attempt running longer fails (and is retried)"
    )
    max_attempts: int = Field(8, ge=1, le=100, description="attempts before a job is dead")
    backoff_base_seconds: float = Field(
        2.0, gt=0, le=3600, description="first retry delay; doubles per attempt, with jitter"
    )
    backoff_max_seconds: float = Field(
        3600.0, gt=0, le=7 * 24 * 3600, description="longest delay between two attempts"
    )
    drain_seconds: float = Field(
        10.0,
        ge=0,
        le=600,
        description="on shutdown, how long running jobs may finish before they are released "
        "to another worker",
    )
    retention_hours: float = Field(
        168.0,
        gt=0,
        description="how long finished (done, discarded) jobs are kept: the window in which "
        "an idempotency key is remembered",
    )
    dead_retention_days: float = Field(
        30.0, gt=0, description="how long dead jobs wait for an operator before deletion"
    )

    @model_validator(mode="after")
    def _delays(self) -> JobSettings:
        if self.backoff_base_seconds > self.backoff_max_seconds:
            raise ValueError("backoff_base_seconds must not exceed backoff_max_seconds")
        return self


class HousekeepingSettings(Section):
    """Purging what the service no longer needs, in small batches, once per interval by one
    process of the deployment (docs/operations/housekeeping.md, ADR 0910)."""

    enabled: bool = Field(
        True,
        description="run housekeeping on a schedule (one job per interval, taken by one worker "
        "of the deployment); off: only `auth-service housekeeping run --confirm` purges",
    )
    interval_minutes: int = Field(
        60, ge=1, le=7 * 24 * 60, description="how often the scheduled run is due"
    )
    batch_size: int = Field(
        500,
        ge=10,
        le=10_000,
        description="rows deleted per statement (each its own short transaction)",
    )
    batch_pause_seconds: float = Field(
        0.02,
        ge=0,
        le=10,
        description="pause between two batches, so that request traffic gets the database",
    )
    session_retention_days: float = Field(
        7.0,
        ge=0,
        le=3650,
        description="revoked and expired sessions, with their refresh-token chains, are "
        "kept this long after they ended (reuse of a spent token of a live session is always "
        "detected: live sessions keep their whole chain)",
    )
    token_retention_hours: float = Field(
        24.0,
        ge=0,
        le=24 * 365,
        description="expired or spent one-time tokens, authorization codes and sign-in flows "
        "are kept this long after they ended",
    )
    backup_prune: bool = Field(
        False,
        description="also apply the backup retention (`backup prune --confirm`) once a day, "
        "by one process of the deployment",
    )


class AuditSettings(Section):
    """The audit trail (audit_events)."""

    retention_days: int = Field(
        365,
        ge=1,
        le=36500,
        description="audit events older than this are deleted by housekeeping",
    )
    archive: bool = Field(
        False,
        description="before deleting them, write the expired audit events to the backup "
        "destinations (JSON lines, zstd, sealed with backup.key like a backup), under audit/",
    )


class AccountSettings(Section):
    """Account lifecycle."""

    deletion_grace_days: int = Field(
        30,
        ge=0,
        le=365,
        description="a self-service account deletion waits this long (signing in cancels it), "
        "then housekeeping erases the account's personal data",
    )


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"
    access_log: bool = True
    access_log_probes: bool = Field(
        False, description="also log /health* and /metrics requests in the access log"
    )


class FeatureSettings(Section):
    """Switches an operator flips at runtime (reloadable without a restart)."""

    registration: bool = Field(
        True, description="open self-service registration; off: only `users create` and admins"
    )
    password_reset: bool = Field(True, description="the emailed password-reset flow")


class UiSettings(Section):
    """The hosted pages: sign-in, registration, recovery, account, consent."""

    enabled: bool = Field(True, description="serve the hosted pages (off: the JSON API only)")
    public_url: str | None = Field(
        None,
        description="base URL of the links in emails (verify, reset); default: "
        "server.public_url. Point it at your own front end to handle those links there",
    )
    product_name: str = Field("auth-service", min_length=1, max_length=60)
    logo_file: Path | None = Field(
        None, description="SVG or PNG shown on every page, served from our origin at /ui/logo"
    )
    primary_color: str = Field("#2f5bd3", pattern=r"^#[0-9a-fA-F]{6}$")
    default_locale: str = Field("en", description="when neither the user nor the browser asks")
    flow_ttl_seconds: int = Field(
        900, ge=60, le=86400, description="how long a started sign-in (or consent) stays valid"
    )

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return v.rstrip("/") if v else v


class OAuthSettings(Section):
    """The OAuth 2.1 authorization server and OpenID Connect provider (docs/oidc.md)."""

    authorization_code_ttl_seconds: int = Field(
        60, ge=10, le=600, description="how long an authorization code may be redeemed"
    )
    access_token_ttl_seconds: int = Field(900, ge=30, le=24 * 3600)
    id_token_ttl_seconds: int = Field(3600, ge=30, le=24 * 3600)
    refresh_token_ttl_seconds: int = Field(
        30 * 24 * 3600,
        ge=60,
        description="absolute lifetime of a grant's refresh tokens (offline_access); the idle "
        "limit is tokens.refresh_idle_ttl_seconds",
    )
    id_token_signing_alg_values: list[SigningAlgorithm] = Field(
        default_factory=lambda: [
            SigningAlgorithm.RS256,
            SigningAlgorithm.ES256,
            SigningAlgorithm.EdDSA,
        ],
        min_length=1,
        description="algorithms a client may register for its ID tokens (RS256 is the default "
        "of OpenID Connect); each gets its own signing keys in the JWKS (restart to change)",
    )
    scopes: dict[str, str] = Field(
        default_factory=dict,
        description="custom API scopes a client may be allowed: name -> what the consent page "
        "says it grants",
    )
    secret_rotation_overlap_seconds: int = Field(
        7 * 24 * 3600,
        ge=0,
        le=365 * 24 * 3600,
        description="how long the old client secret keeps working after `rotate-secret`",
    )
    dynamic_registration: bool = Field(
        False, description="RFC 7591 dynamic client registration at /oauth2/register"
    )
    registration_initial_access_token: SecretStr | None = Field(
        None,
        description="the bearer token POST /oauth2/register requires (needed when "
        "dynamic_registration is on)",
    )

    pushed_request_ttl_seconds: int = Field(
        60,
        ge=5,
        le=600,
        description="how long a pushed authorization request's request_uri may be used (RFC "
        "9126; once)",
    )
    require_pushed_authorization_requests: bool = Field(
        False,
        description="every client must push its authorization requests (RFC 9126); per client: "
        "require_pushed_authorization_requests",
    )

    client_assertion_legacy_audiences: bool = Field(
        True,
        description="private_key_jwt: also accept the token (and PAR) endpoint URL as a client "
        "assertion's aud, besides the issuer (ADR 0730)",
    )
    jwks_uri_allow_private_networks: bool = Field(
        False,
        description="fetch a client's jwks_uri also from loopback and private addresses, and "
        "over http (development and tests only)",
    )

    device_code_ttl_seconds: int = Field(
        600,
        ge=60,
        le=3600,
        description="how long a device code and its user code live (RFC 8628 expires_in)",
    )
    device_code_interval_seconds: int = Field(
        5, ge=1, le=60, description="the polling interval a device is given (RFC 8628 interval)"
    )

    dpop_nonce: bool = Field(
        False,
        description="DPoP proofs must carry a nonce of this server (RFC 9449 section 8: "
        "use_dpop_nonce), at the OAuth endpoints and the /v1 API alike",
    )

    @field_validator("scopes")
    @classmethod
    def _scope_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            # RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            if not re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]{1,64}", name):
                raise ValueError(f"scope {name!r} is not a valid scope token")
        return v

    @model_validator(mode="after")
    def _registration_protected(self) -> OAuthSettings:
        if self.dynamic_registration and self.registration_initial_access_token is None:
            raise ValueError(
                "dynamic_registration needs registration_initial_access_token (open "
                "registration is not offered)"
            )
        return self


class WebhookSettings(Section):
    """Lifecycle webhooks: signed deliveries of audit events (docs/operations/webhooks.md)."""

    allow_http: bool = Field(
        False,
        description="accept http:// target URLs (development only; production refuses it)",
    )
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs a target may resolve into although they are private, loopback, "
        "link-local or reserved (e.g. 10.0.0.0/8 for an internal receiver); empty: only "
        "public addresses",
    )
    timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="one delivery attempt: connect, send and answer"
    )
    max_response_bytes: int = Field(
        65536, ge=0, le=10 * 1024 * 1024, description="bytes of an answer read, at most"
    )
    ca_file: Path | None = Field(
        None,
        description="PEM file of CA certificates trusted for https targets besides the public "
        "ones (receivers behind an internal PKI)",
    )
    max_attempts: int = Field(
        12,
        ge=1,
        le=100,
        description="attempts of one delivery (backoff of the job queue) before it is dead",
    )
    secret_overlap_hours: float = Field(
        24.0,
        ge=0,
        le=24 * 30,
        description="after a secret rotation, how long the previous secret still signs "
        "(both signatures are sent)",
    )
    delivery_log_size: int = Field(
        1000, ge=10, le=100_000, description="deliveries kept in the log of one subscription"
    )

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for cidr in v:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a network (CIDR)") from None
        return v


class Settings(BaseSettings):
    """The whole configuration. Construct it through ``config.loader.load_settings``.

    Constructing ``Settings(...)`` directly reads nothing from the environment, so tests and
    hot reload get exactly the values they pass.
    """

    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    env: Environment = Environment.development
    debug: bool = False
    data_dir: Path = Path("var")
    master_key: SecretStr | None = Field(
        None, description="base64url of 32 random bytes; development generates one in data_dir"
    )
    default_tenant: str = Field(
        "default",
        description="slug of the tenant new accounts belong to and sign-in looks in; "
        "the first migration creates 'default'",
    )
    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    tokens: TokenSettings = Field(default_factory=TokenSettings)
    passwords: PasswordSettings = Field(default_factory=PasswordSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    lockout: LockoutSettings = Field(default_factory=LockoutSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    housekeeping: HousekeepingSettings = Field(default_factory=HousekeepingSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    accounts: AccountSettings = Field(default_factory=AccountSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)
    mfa: MfaSettings = Field(default_factory=MfaSettings)
    federation: FederationSettings = Field(default_factory=FederationSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    dr: DrSettings = Field(default_factory=DrSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)

    @property
    def database_url(self) -> str:
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite+aiosqlite:///{(self.data_dir / 'auth.db').as_posix()}"

    @property
    def issuer(self) -> str:
        return self.tokens.issuer or self.server.public_url

    @property
    def links_base_url(self) -> str:
        """Where the links in emails point (``ui.public_url``, else the public URL)."""
        return self.ui.public_url or self.server.public_url

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"


# Dotted paths of every secret setting: masked by `config show`, readable from *_FILE.
SECRET_PATHS: tuple[str, ...] = (
    "master_key",
    "database.url",
    "redis.url",
    "mail.smtp_password",
    "oauth.registration_initial_access_token",
    "backup.key",
    "backup.previous_keys",
    "dr.standby_url",
)
