"""The production rules: what a production start refuses is what `config check` calls
critical in production, and staging is never refused."""

from __future__ import annotations

from typing import Any

import pytest

from auth_service.cli.config_audit import Level, audit
from auth_service.config.loader import LoadedSettings
from auth_service.config.safety import PRODUCTION_RULES, ProductionRule, production_refusals
from auth_service.config.settings import Settings
from auth_service.security.aead import MasterKey
from auth_service.services import StartupError, check_production_safety


def production(**changes: Any) -> dict[str, Any]:
    """Settings a production start accepts, with ``changes`` on top."""
    return {
        "env": "production",
        "master_key": MasterKey.generate_text(),
        "server": {"public_url": "https://auth.example.com"},
        **changes,
    }


BREAKING: dict[str, dict[str, Any]] = {
    "master_key": {"master_key": None},
    "debug": {"debug": True},
    "server.public_url": {"server": {"public_url": "http://auth.example.com"}},
    "webhooks.allow_http": {"webhooks": {"allow_http": True}},
}


def test_a_safe_production_configuration_starts() -> None:
    settings = Settings(**production())
    assert production_refusals(settings) == []
    check_production_safety(settings)


@pytest.mark.parametrize("rule", PRODUCTION_RULES, ids=lambda r: r.key)
def test_each_rule_refuses_production_and_is_critical_in_the_audit(rule: ProductionRule) -> None:
    settings = Settings(**production(**BREAKING[rule.key]))
    assert production_refusals(settings) == [rule.refusal]
    with pytest.raises(StartupError, match="refusing to start in production with"):
        check_production_safety(settings)
    levels = {f.key: f.level for f in audit(LoadedSettings(settings, {}))}
    assert levels[rule.key] is Level.critical


@pytest.mark.parametrize("rule", PRODUCTION_RULES, ids=lambda r: r.key)
def test_staging_is_audited_but_not_refused(rule: ProductionRule) -> None:
    settings = Settings(**production(env="staging", **BREAKING[rule.key]))
    assert production_refusals(settings) == []
    check_production_safety(settings)
