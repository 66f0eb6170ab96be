"""Settings for encryption in transit: the service's own HTTPS listeners, and how it checks
the certificates of PostgreSQL.

Kept out of ``config.settings`` so that module only gains one field; the checks here run
whenever settings are loaded (``serve``, ``config check``, a hot reload), so a missing or
mismatched certificate is a configuration error naming the key, not a traceback at start.
"""

from __future__ import annotations

import ssl
from enum import StrEnum
from pathlib import Path

from pydantic import Field, model_validator

from auth_service.config.redis_url import parse_redis_url
from auth_service.config.sections import Section


def check_certificate_pair(cert_path: Path, key_path: Path) -> None:
    """Raise ValueError (a readable reason) unless the two PEM files load as one server
    certificate chain and its private key."""
    for name, path in (("cert_path", cert_path), ("key_path", key_path)):
        try:
            path.read_bytes()
        except OSError as exc:
            raise ValueError(f"{name} {path} cannot be read ({exc.strerror})") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_path, key_path)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(
            f"cert_path {cert_path} and key_path {key_path} are not a PEM certificate "
            f"chain and its private key ({exc})"
        ) from None


class ServerTLSSettings(Section):
    """HTTPS on both listeners (API and management) when both files are set."""

    cert_path: Path | None = Field(
        None,
        description="PEM certificate chain (leaf first) served on both listeners; "
        "with key_path, the service speaks HTTPS only",
    )
    key_path: Path | None = Field(None, description="PEM private key of cert_path")
    reload_interval_seconds: float = Field(
        30.0,
        ge=0.2,
        le=3600,
        description="how often the two files are checked for a rotated certificate, "
        "which new connections then get without a restart",
    )

    @model_validator(mode="after")
    def _pair(self) -> ServerTLSSettings:
        if (self.cert_path is None) != (self.key_path is None):
            raise ValueError(
                "server.tls.cert_path and server.tls.key_path go together: "
                "set both (HTTPS) or neither (HTTP)"
            )
        if self.cert_path is not None and self.key_path is not None:
            check_certificate_pair(self.cert_path, self.key_path)
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_path is not None


class PostgresSslMode(StrEnum):
    """libpq's sslmode names, with libpq's meaning (ADR 0311)."""

    disable = "disable"  # plain TCP
    prefer = "prefer"  # TLS when the server offers it, unverified; plain otherwise
    require = "require"  # TLS or nothing; the certificate is not checked
    verify_ca = "verify-ca"  # TLS, the certificate signed by ssl_root_cert
    verify_full = "verify-full"  # ... and issued for the host connected to


def check_root_cert(mode: PostgresSslMode, root_cert: Path | None) -> None:
    """ssl_root_cert is required by, and only meaningful for, the verify modes."""
    verifying = mode in (PostgresSslMode.verify_ca, PostgresSslMode.verify_full)
    if verifying and root_cert is None:
        raise ValueError(f"database.ssl_mode {mode.value} needs database.ssl_root_cert")
    if root_cert is not None:
        if not verifying:
            raise ValueError(
                "database.ssl_root_cert is only used with ssl_mode verify-ca or verify-full"
            )
        try:
            ssl.create_default_context(cafile=root_cert)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(
                f"database.ssl_root_cert {root_cert} is not a readable PEM CA ({exc})"
            ) from None


def check_redis(url: str | None, ca_cert: Path | None) -> None:
    """A URL of a known form; redis.ssl_ca_cert only with a rediss:// URL, a readable PEM CA."""
    if url is not None:
        parse_redis_url(url)
    if ca_cert is None:
        return
    if url is None or not url.startswith("rediss://"):
        raise ValueError("redis.ssl_ca_cert is only used with a rediss:// redis.url")
    try:
        ssl.create_default_context(cafile=ca_cert)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"redis.ssl_ca_cert {ca_cert} is not a readable PEM CA ({exc})") from None
