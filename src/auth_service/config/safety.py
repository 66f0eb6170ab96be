"""Settings that must never reach production: each rule written once, read twice.

A production process refuses to start when one is broken (``services.check_production_safety``,
run by ``serve`` before it binds and by every worker); ``config check`` reports the same rules
with a severity that depends on the environment (``cli.config_audit``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from auth_service.config.settings import Environment, Settings


@dataclass(frozen=True)
class ProductionRule:
    key: str
    broken: Callable[[Settings], bool]
    refusal: str
    """How a refused start names the problem: "refusing to start in production with ..."."""


# No configured key means a generated development key (security.aead); production never
# gets that far (services.load_master_key refuses first, saying how to make one).
DEVELOPMENT_MASTER_KEY = ProductionRule(
    "master_key", lambda s: s.master_key is None, "a development master key"
)
DEBUG = ProductionRule("debug", lambda s: s.debug, "debug enabled")
HTTP_PUBLIC_URL = ProductionRule(
    "server.public_url",
    lambda s: s.server.public_url.startswith("http://"),
    "an http:// public_url (use https://)",
)
# Webhook payloads and their signatures in clear text, open to anyone on the path.
HTTP_WEBHOOKS = ProductionRule(
    "webhooks.allow_http",
    lambda s: s.webhooks.allow_http,
    "webhooks.allow_http enabled (webhook targets must be https://)",
)
PRODUCTION_RULES = (DEVELOPMENT_MASTER_KEY, DEBUG, HTTP_PUBLIC_URL, HTTP_WEBHOOKS)


def production_refusals(settings: Settings) -> list[str]:
    """What makes these settings unfit to start in production (empty elsewhere)."""
    if settings.env is not Environment.production:
        return []
    return [rule.refusal for rule in PRODUCTION_RULES if rule.broken(settings)]
