"""compose.yaml: every file it mounts exists (or is made by docker/gen-secrets.sh), health
checks and dependency conditions everywhere, profiles, hardening; validated against the
Compose Specification schema with dclint."""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploy_support import ROOT, ensure_tool, load_yaml

COMPOSE = ROOT / "compose.yaml"
GEN_SECRETS = ROOT / "docker" / "gen-secrets.sh"
SECRETS_DIR = Path("var/compose/secrets")
# Host runtime paths, not repository files.
HOST_PATHS = {"/var/run/docker.sock"}
CORE = {"volume-init", "postgres", "redis", "mailpit", "migrate", "auth-service"}
OURS = {"migrate", "auth-service", "backup", "wal-stream", "dr-watch"}
# Opt-in services in a profile of their own, not in `all`: they need what this stack lacks.
OPT_IN = {"dr-watch": "dr"}
ONE_SHOTS = {"volume-init", "migrate"}
# The monitoring/ files the stack must mount (monitoring is the single source of truth).
MONITORING_MOUNTS = {
    "monitoring/prometheus/prometheus.yml",
    "monitoring/prometheus/rules",
    "monitoring/alertmanager/alertmanager.yml",
    "monitoring/grafana/provisioning/datasources",
    "monitoring/grafana/provisioning/dashboards",
    "monitoring/grafana/dashboards",
    "monitoring/loki/loki.yaml",
    "monitoring/loki/promtail.yaml",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


def bind_sources(compose: dict[str, Any]) -> dict[str, set[str]]:
    """Host path -> services, for every bind mount and file-based secret."""
    named = set(compose.get("volumes", {}))
    out: dict[str, set[str]] = {}
    for name, svc in compose["services"].items():
        for vol in svc.get("volumes", []):
            source = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source", "")
            kind = "volume" if source in named else "bind"
            if not isinstance(vol, str):
                kind = vol["type"]
            if kind == "bind":
                out.setdefault(source, set()).add(name)
        for secret in svc.get("secrets", []):
            ref = secret if isinstance(secret, str) else secret["source"]
            out.setdefault(compose["secrets"][ref]["file"], set()).add(name)
    return out


def generated_files(tmp_path: Path) -> set[Path]:
    target = tmp_path / "secrets"
    subprocess.run(
        ["sh", str(GEN_SECRETS), str(target)], check=True, capture_output=True, timeout=60
    )
    return {p.relative_to(target) for p in target.rglob("*")}


def test_every_mounted_path_exists_or_is_generated(compose: dict[str, Any], tmp_path: Path) -> None:
    generated = generated_files(tmp_path)
    for source, services in sorted(bind_sources(compose).items()):
        if source in HOST_PATHS:
            continue
        rel = Path(os.path.normpath(source))
        assert not rel.is_absolute(), f"{services}: absolute host path {source}"
        if rel.is_relative_to(SECRETS_DIR):
            assert rel.relative_to(SECRETS_DIR) in generated, (
                f"{source} is not made by gen-secrets.sh"
            )
        else:
            assert (ROOT / rel).exists(), f"{source} (mounted by {sorted(services)}) does not exist"


def test_monitoring_files_are_mounted(compose: dict[str, Any]) -> None:
    mounted = {os.path.normpath(s) for s in bind_sources(compose)}
    assert mounted >= MONITORING_MOUNTS, MONITORING_MOUNTS - mounted
    for path in MONITORING_MOUNTS:
        assert (ROOT / path).exists(), f"{path} must exist (written by the monitoring issue)"


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        if name in ONE_SHOTS:
            assert svc.get("restart") == "no", f"{name} is a one-shot"
            continue
        hc = svc.get("healthcheck") or {}
        assert hc.get("test"), f"{name} has no healthcheck"
        assert not hc.get("disable"), f"{name} disables its healthcheck"


def test_dependencies_wait_for_a_condition(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on must use conditions"
        for dep, spec in deps.items():
            expected = "service_completed_successfully" if dep in ONE_SHOTS else "service_healthy"
            assert spec["condition"] == expected, f"{name} -> {dep}"
            assert set(services[dep].get("profiles", [])) <= set(
                svc.get("profiles", [])
            ) or not services[dep].get("profiles"), (
                f"{name} depends on {dep}, which is not started with the same profiles"
            )
    assert (
        services["auth-service"]["depends_on"]["migrate"]["condition"]
        == "service_completed_successfully"
    )


def test_profiles_leave_only_the_core_by_default(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        if name in CORE:
            assert "profiles" not in svc, name
        elif name in OPT_IN:
            assert svc["profiles"] == [OPT_IN[name]], name
        else:
            assert "all" in svc["profiles"], f"{name} is missing from the `all` profile"


def test_our_containers_are_hardened(compose: dict[str, Any]) -> None:
    for name in OURS:
        svc = compose["services"][name]
        assert svc["user"] == "10001:10001"
        assert svc["read_only"] is True
        assert svc["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in svc["security_opt"]
        assert any(t.startswith("/tmp:") for t in svc["tmpfs"])  # noqa: S108 - container path
        env = svc["environment"]
        assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")  # noqa: S108
        assert "AUTH_MASTER_KEY_FILE" in env
        assert "AUTH_MASTER_KEY" not in env
    for name, svc in compose["services"].items():
        assert "privileged" not in svc, name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name


def test_service_runs_two_replicas_bound_to_localhost(compose: dict[str, Any]) -> None:
    svc = compose["services"]["auth-service"]
    assert svc["deploy"]["replicas"] == 2
    assert "container_name" not in svc
    for name, s in compose["services"].items():
        for port in s.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    grace = int(svc["stop_grace_period"].rstrip("s"))
    assert grace > 20 + 5, "longer than the service's drain"


def test_wal_is_archived_into_the_backup_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    pg = services["postgres"]
    assert "wal_level=replica" in pg["command"]
    assert any("10-replication.sh:/docker-entrypoint-initdb.d/" in v for v in pg["volumes"])
    assert services["wal-stream"]["command"] == ["backup", "wal-stream"]
    assert services["backup"]["command"] == ["backup", "schedule"]
    for name in ("wal-stream", "backup"):
        assert "backups:/var/lib/auth-service/backups" in services[name]["volumes"]
        assert services[name]["environment"]["AUTH_BACKUP__KEY_FILE"] == "/run/secrets/backup_key"
    # The service reads the catalog (freshness check, backup metrics) but cannot change it.
    assert "backups:/var/lib/auth-service/backups:ro" in services["auth-service"]["volumes"]
    assert "backup_key" not in services["migrate"]["secrets"]


def _compose_env(env: dict[str, str], secrets: Path) -> dict[str, str]:
    """The environment a container sees with no .env: `${VAR:-default}` as its default, and
    /run/secrets/ files from the generated secrets."""
    resolved = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}
    return {
        k: str(secrets / v.removeprefix("/run/secrets/")) if v.startswith("/run/secrets/") else v
        for k, v in resolved.items()
    }


def test_dr_watch_is_an_opt_in_observer_with_valid_settings(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    from auth_service.config.loader import load_settings

    svc = compose["services"]["dr-watch"]
    command = svc["command"]
    assert command[:2] == ["dr", "watch"]
    port = command[command.index("--metrics-port") + 1]
    assert f"http://127.0.0.1:{port}/metrics" in svc["healthcheck"]["test"]
    assert "ports" not in svc
    env = svc["environment"]
    assert env["AUTH_DR__STANDBY_URL_FILE"] == "/run/secrets/standby_url"
    assert "standby_url" in svc["secrets"]
    assert not any(
        k.startswith("AUTH_DR__STANDBY_URL") and k != "AUTH_DR__STANDBY_URL_FILE" for k in env
    )

    generated_files(tmp_path)  # the secrets, standby_url placeholder included
    environ = _compose_env(env, tmp_path / "secrets")
    settings = load_settings(environ=environ).settings
    assert settings.dr.auto.enabled is False  # observes only until switched on
    enabled = load_settings(environ=environ | {"AUTH_DR__AUTO__ENABLED": "true"}).settings
    assert enabled.dr.auto.enabled is True
    assert settings.dr.standby_url is not None
    assert settings.dr.auto.store is not None
    assert settings.dr.auto.store.url == "file:///var/lib/auth-service/backups"
    assert "backups:/var/lib/auth-service/backups" in svc["volumes"]


def test_gen_secrets_is_idempotent_and_makes_valid_keys(tmp_path: Path) -> None:
    target = tmp_path / "s"
    subprocess.run(["sh", str(GEN_SECRETS), str(target)], check=True, capture_output=True)
    first = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    subprocess.run(["sh", str(GEN_SECRETS), str(target)], check=True, capture_output=True)
    assert first == {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    key = (target / "master_key").read_text()
    assert len(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))) == 32
    password = (target / "postgres_password").read_text()
    assert (
        target / "database_url"
    ).read_text() == f"postgresql+asyncpg://auth:{password}@postgres:5432/auth"
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert stat.S_IMODE((target / "alertmanager").stat().st_mode) == 0o755


def test_compose_is_valid_against_the_compose_specification() -> None:
    dclint = ensure_tool("dclint", "dclint")
    proc = subprocess.run(
        [
            dclint,
            "--config",
            str(ROOT / "docker" / "dclint.yaml"),
            "--max-warnings",
            "0",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
