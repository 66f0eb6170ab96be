"""Security audit of a configuration: findings by severity (``auth-service config check``).

Each rule looks at the effective settings and where each value came from; it never connects
anywhere. Severity depends on the environment: what is fine on a laptop is a finding in
production. The exit code of the command is the worst severity (docs/configuration.md).

It lives with the command rather than in ``config``: its rules read the master key
(``security``) and the database URL (``db``), which build on ``config``, not the reverse.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from enum import IntEnum

from auth_service.config.loader import LoadedSettings
from auth_service.config.safety import (
    DEBUG,
    DEVELOPMENT_MASTER_KEY,
    HTTP_PUBLIC_URL,
    HTTP_WEBHOOKS,
)
from auth_service.config.settings import SECRET_PATHS, Environment, Settings
from auth_service.db.engine import Backend, backend_of
from auth_service.security.aead import MasterKey, MasterKeyError


class Level(IntEnum):
    info = 0
    warning = 1
    error = 2
    critical = 3


# Exit codes of `config check` by worst finding; 2 stays "configuration is invalid".
EXIT_CODES = {None: 0, Level.info: 0, Level.warning: 3, Level.error: 4, Level.critical: 5}

# OWASP Password Storage Cheat Sheet: argon2id minimum memory (KiB) for a time cost.
OWASP_ARGON2 = {1: 47104, 2: 19456, 3: 12288, 4: 9216, 5: 7168}

# Dotted paths (or list settings) that hold secrets besides SECRET_PATHS.
_SECRETS_IN_LISTS = ("alerting.channels",)


@dataclass(frozen=True)
class Finding:
    level: Level
    key: str
    message: str
    source: str = "defaults"

    def as_dict(self) -> dict[str, str]:
        data = asdict(self)
        data["level"] = self.level.name
        return data


@dataclass(frozen=True)
class Context:
    settings: Settings
    sources: dict[str, str]

    @property
    def env(self) -> Environment:
        return self.settings.env

    @property
    def prod(self) -> bool:
        return self.env is Environment.production

    @property
    def deployed(self) -> bool:
        return self.env is not Environment.development

    def src(self, key: str) -> str:
        return self.sources.get(key, "defaults")

    def finding(self, level: Level, key: str, message: str) -> Finding:
        return Finding(level, key, message, self.src(key))

    def by_env(self, prod: Level, staging: Level, dev: Level | None) -> Level | None:
        if self.prod:
            return prod
        return staging if self.deployed else dev


Rule = Callable[[Context], Iterator[Finding]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


@rule
def debug_enabled(c: Context) -> Iterator[Finding]:
    if DEBUG.broken(c.settings) and c.deployed:
        level = Level.critical if c.prod else Level.warning
        yield c.finding(level, DEBUG.key, f"debug is on in {c.env.value}")


@rule
def sqlite_database(c: Context) -> Iterator[Finding]:
    if backend_of(c.settings.database_url) is Backend.sqlite:
        level = c.by_env(Level.error, Level.warning, None)
        if level is not None:
            yield c.finding(
                level,
                "database.url",
                "SQLite in a deployed environment: one node, no replication; use PostgreSQL "
                "(AUTH_DATABASE__URL_FILE)",
            )


@rule
def database_tls(c: Context) -> Iterator[Finding]:
    url = c.settings.database_url
    if "sslmode=disable" in url or "ssl=disable" in url:
        level = c.by_env(Level.warning, Level.warning, None)
        if level is not None:
            yield c.finding(level, "database.url", "TLS to the database is disabled")


@rule
def memory_rate_limits(c: Context) -> Iterator[Finding]:
    rl = c.settings.rate_limits
    if not rl.enabled:
        level = c.by_env(Level.error, Level.warning, None)
        if level is not None:
            yield c.finding(level, "rate_limits.enabled", "rate limiting is disabled")
        return
    if rl.storage == "redis" and c.settings.redis.url is None:
        yield c.finding(
            Level.error,
            "redis.url",
            "rate_limits.storage is redis but redis.url is not set (AUTH_REDIS__URL_FILE)",
        )
        return
    in_memory = rl.storage == "memory" or (rl.storage == "auto" and c.settings.redis.url is None)
    if not in_memory:
        return
    workers = c.settings.server.workers
    if workers > 1:
        yield c.finding(
            Level.error if c.deployed else Level.warning,
            "rate_limits.storage",
            f"in-memory rate limiting with {workers} workers: each worker counts alone, so "
            f"limits are {workers}x looser; configure redis.url",
        )
    elif c.prod:
        yield c.finding(
            Level.warning,
            "rate_limits.storage",
            "in-memory rate limiting in production: replicas do not share counts; "
            "configure redis.url",
        )


@rule
def public_url(c: Context) -> Iterator[Finding]:
    if HTTP_PUBLIC_URL.broken(c.settings):
        level = c.by_env(Level.critical, Level.error, None)
        if level is not None:
            yield c.finding(
                level, HTTP_PUBLIC_URL.key, "http:// public URL: tokens and passwords in clear"
            )


@rule
def webhook_http(c: Context) -> Iterator[Finding]:
    if HTTP_WEBHOOKS.broken(c.settings):
        level = c.by_env(Level.critical, Level.error, None)
        if level is not None:
            yield c.finding(
                level,
                HTTP_WEBHOOKS.key,
                "http:// webhook targets: payloads and signatures in clear on the path",
            )


@rule
def cors(c: Context) -> Iterator[Finding]:
    server = c.settings.server
    if "*" in server.cors_origins:
        if server.cors_allow_credentials:
            yield c.finding(
                Level.critical,
                "server.cors_origins",
                "CORS wildcard with credentials: any site can call the API as the user",
            )
        elif c.deployed:
            yield c.finding(Level.warning, "server.cors_origins", "CORS allows any origin")
    for origin in server.cors_origins:
        if origin.startswith("http://") and c.prod:
            yield c.finding(
                Level.warning, "server.cors_origins", f"CORS origin {origin} is not https"
            )


@rule
def master_key(c: Context) -> Iterator[Finding]:
    key = c.settings.master_key
    # `key is None` is that rule again, spelled out so that the type checker narrows `key`.
    if DEVELOPMENT_MASTER_KEY.broken(c.settings) or key is None:
        level = c.by_env(Level.critical, Level.error, None)
        if level is not None:
            yield c.finding(
                level,
                DEVELOPMENT_MASTER_KEY.key,
                "no master key: set AUTH_MASTER_KEY_FILE (a development key is not acceptable)",
            )
        return
    try:
        parsed = MasterKey.from_text(key.get_secret_value())
    except MasterKeyError as exc:
        yield c.finding(Level.critical, "master_key", f"invalid master key: {exc}")
        return
    if len(set(parsed.key)) < 16:
        yield c.finding(
            Level.critical, "master_key", "master key is not random (few distinct bytes)"
        )


@rule
def argon2_cost(c: Context) -> Iterator[Finding]:
    p = c.settings.passwords
    needed = OWASP_ARGON2[min(p.argon2_time_cost, 5)]
    if p.argon2_memory_cost_kib < needed:
        level = c.by_env(Level.error, Level.error, Level.info)
        assert level is not None
        yield c.finding(
            level,
            "passwords.argon2_memory_cost_kib",
            f"argon2id m={p.argon2_memory_cost_kib} KiB, t={p.argon2_time_cost} is below the "
            f"OWASP minimum (m>={needed} KiB for t={p.argon2_time_cost})",
        )
    if p.min_length < 8:
        yield c.finding(
            Level.error if c.deployed else Level.info,
            "passwords.min_length",
            f"minimum password length {p.min_length} is below 8 (NIST SP 800-63B)",
        )


@rule
def token_lifetimes(c: Context) -> Iterator[Finding]:
    t = c.settings.tokens
    if t.access_token_ttl_seconds > 3600:
        yield c.finding(
            Level.warning,
            "tokens.access_token_ttl_seconds",
            f"access tokens live {t.access_token_ttl_seconds}s; they cannot be revoked, keep "
            "them at most 1 hour",
        )
    if t.refresh_absolute_ttl_seconds > 90 * 86400:
        yield c.finding(
            Level.warning, "tokens.refresh_absolute_ttl_seconds", "sessions last over 90 days"
        )
    if t.refresh_idle_ttl_seconds > 30 * 86400:
        yield c.finding(
            Level.warning, "tokens.refresh_idle_ttl_seconds", "idle sessions last over 30 days"
        )
    if t.refresh_reuse_grace_seconds > 10:
        yield c.finding(
            Level.error if t.refresh_reuse_grace_seconds > 60 else Level.warning,
            "tokens.refresh_reuse_grace_seconds",
            f"a stolen refresh token is accepted for {t.refresh_reuse_grace_seconds}s after "
            "rotation; keep the grace at 10s or less",
        )


@rule
def lockout(c: Context) -> Iterator[Finding]:
    if not c.settings.lockout.enabled and c.deployed:
        yield c.finding(Level.warning, "lockout.enabled", "account lockout is disabled")


@rule
def admins_without_second_factor(c: Context) -> Iterator[Finding]:
    """Production warns while an administrator may sign in with a password alone."""
    mfa = c.settings.mfa
    if c.prod and (not mfa.enabled or "admin" not in mfa.required_roles):
        yield c.finding(
            Level.warning,
            "mfa.required_roles",
            "admins may sign in without a second factor (add admin to mfa.required_roles)",
        )


@rule
def smtp_tls(c: Context) -> Iterator[Finding]:
    mail = c.settings.mail
    if mail.backend != "smtp":
        if c.prod:
            yield c.finding(
                Level.warning, "mail.backend", "mail goes to the outbox directory, not to users"
            )
        return
    if not mail.smtp_tls and not mail.smtp_starttls:
        local = mail.smtp_host in ("localhost", "127.0.0.1", "::1")
        yield c.finding(
            Level.warning if local else Level.error,
            "mail.smtp_starttls",
            "SMTP without TLS: reset links travel in clear",
        )
    if not mail.smtp_validate_certs:
        yield c.finding(
            Level.error if c.deployed else Level.warning,
            "mail.smtp_validate_certs",
            "SMTP TLS certificate verification is disabled",
        )


@rule
def management_binding(c: Context) -> Iterator[Finding]:
    server = c.settings.server
    if server.management_port == 0:
        if c.deployed:
            yield c.finding(
                Level.warning,
                "server.management_port",
                "metrics and probes share the public port: anyone can read /metrics",
            )
        return
    try:
        address = ipaddress.ip_address(server.management_host)
    except ValueError:
        return  # a host name: cannot tell, resolving would make the audit depend on DNS
    if address.is_unspecified and c.deployed:
        yield c.finding(
            Level.warning,
            "server.management_host",
            f"management port bound on all interfaces ({server.management_host}); bind the "
            "pod IP or restrict it with a NetworkPolicy",
        )


@rule
def inline_secrets(c: Context) -> Iterator[Finding]:
    for path in (*SECRET_PATHS, *_SECRETS_IN_LISTS):
        source = c.src(path)
        if not source.startswith("file "):
            continue
        if path in _SECRETS_IN_LISTS and not _list_has_secret(c.settings, path):
            continue
        yield c.finding(
            Level.error if c.deployed else Level.info,
            path,
            "secret written inline in a config file; mount it as a secret file "
            f"(AUTH_{path.replace('.', '__').upper()}_FILE)",
        )


def _list_has_secret(settings: Settings, path: str) -> bool:
    if path == "alerting.channels":
        return any(c.type in ("slack", "pagerduty", "webhook") for c in settings.alerting.channels)
    return False


@rule
def tls_verify_health(c: Context) -> Iterator[Finding]:
    for channel in c.settings.alerting.channels:
        url = getattr(channel, "url", "")
        if isinstance(url, str) and url.startswith("http://") and c.prod:
            host = make_url_host(url)
            if host not in ("localhost", "127.0.0.1", "::1"):
                yield c.finding(
                    Level.warning,
                    "alerting.channels",
                    f"alert channel {channel.name} uses http:// to {host}",
                )


def make_url_host(url: str) -> str:
    rest = url.split("://", 1)[-1]
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return host.rsplit(":", 1)[0].strip("[]")


def audit(loaded: LoadedSettings) -> list[Finding]:
    """Every finding for this configuration, worst first."""
    context = Context(loaded.settings, loaded.sources)
    findings = [f for r in RULES for f in r(context)]
    return sorted(findings, key=lambda f: (-f.level, f.key))


def exit_code(findings: list[Finding]) -> int:
    worst = max((f.level for f in findings), default=None)
    return EXIT_CODES[worst]
