"""The ``federation`` settings section: how long to wait for an upstream identity provider
and when to stop asking it (docs/federation.md). Connectors themselves are data
(``auth-service connectors``), not settings."""

from __future__ import annotations

from pydantic import Field

from auth_service.config.sections import Section


class FederationSettings(Section):
    """Calls to upstream identity providers (discovery, keys, token, userinfo)."""

    upstream_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=60,
        description="the longest one call to a provider may take, connecting included; "
        "past it the sign-in ends on the 'did not answer' page",
    )
    breaker_failures: int = Field(
        5,
        ge=1,
        le=100,
        description="consecutive failed or timed-out calls to one connector's provider that "
        "open its circuit breaker: sign-ins through it then fail at once, without a call",
    )
    breaker_cooldown_seconds: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="how long an open breaker waits before letting one sign-in through as a "
        "probe (its success closes the breaker)",
    )
