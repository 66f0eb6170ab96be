"""The runbook's commands: `dr status`, `dr failover` (refusal and success), `dr failback`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from auth_service.backup import pgtools
from tests.support.pg_cluster import acli
from tests.support.settings import TEST_MASTER_KEY, write_config

# Throwaway PostgreSQL clusters: the server binaries, not the shared test server.
pytestmark = [pytest.mark.slow, pytest.mark.postgres]


async def _roles(config: Path) -> dict[str, Any]:
    code, out = await acli(config, "dr", "status", "--format", "json")
    assert code == 0, out
    data = json.loads(out)
    return {n["address"].split(":")[1]: n for n in data["nodes"]} | {
        "backup": data["newest_backup"]
    }


async def _audit(node: pgtools.Cluster) -> dict[str, dict[str, Any]]:
    """The DR audit events stored in ``node``, by type."""
    conn = await asyncpg.connect(node.conninfo.asyncpg_dsn("auth"))
    try:
        rows = await conn.fetch(
            "SELECT type, request_id, details FROM audit_events WHERE type LIKE 'dr.%'"
        )
    finally:
        await conn.close()
    found = {}
    for row in rows:
        details = row["details"]
        details = json.loads(details) if isinstance(details, str) else details
        assert "postgresql" not in json.dumps(details)  # host:port, never a URL
        found[row["type"]] = {"request_id": row["request_id"], **details}
    return found


async def test_status_failover_failback_commands(
    tmp_path: Path, pair: tuple[pgtools.Cluster, pgtools.Cluster], backup_key: str
) -> None:
    a, b = pair
    url_file = tmp_path / "database-url"
    url_file.write_text(a.conninfo.sqlalchemy_url("auth"))
    data = {
        "data_dir": str(tmp_path / "data"),
        "master_key": TEST_MASTER_KEY,
        "database": {"url": a.conninfo.sqlalchemy_url("auth")},
        "dr": {"standby_url": b.conninfo.sqlalchemy_url("auth")},
        "backup": {"key": backup_key, "destinations": [{"url": f"file://{tmp_path / 'store'}"}]},
    }
    config = write_config(tmp_path / "config.yaml", data)
    code, out = await acli(config, "backup", "run")
    assert code == 0, out

    nodes = await _roles(config)
    assert nodes[str(a.port)]["role"] == "primary"
    assert nodes[str(a.port)]["replicas"][0]["state"] == "streaming"
    assert nodes[str(b.port)]["role"] == "standby"
    assert next(iter(nodes["backup"].values())).endswith(tuple("0123456789abcdef"))

    code, out = await acli(config, "dr", "failover", "--max-lag-bytes", "-1")
    assert code == 1
    assert "bytes behind (limit -1)" in out
    assert "Traceback" not in out

    code, out = await acli(config, "dr", "failover", "--url-file", str(url_file))
    assert code == 0, out
    assert "promote standby" in out
    nodes = await _roles(config)
    assert nodes[str(b.port)]["role"] == "primary"
    assert nodes[str(a.port)]["read_only"] is True  # fenced: no split brain
    assert url_file.read_text().strip() == b.conninfo.sqlalchemy_url("auth")
    conn = await asyncpg.connect(a.conninfo.asyncpg_dsn("auth"))
    try:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("CREATE TABLE split_brain (x int)")
    finally:
        await conn.close()
    failover = (await _audit(b))["dr.failover"]
    assert failover["request_id"] == "cli"
    assert failover["old_primary"] == f"127.0.0.1:{a.port}"
    assert failover["new_primary"] == f"127.0.0.1:{b.port}"
    assert (failover["forced"], failover["old_primary_fenced"], failover["lag_bytes"]) == (
        False,
        True,
        0,
    )
    assert "promote standby" in dict(failover["steps"])
    conn = await asyncpg.connect(b.conninfo.asyncpg_dsn("auth"))
    try:
        await conn.execute("CREATE TABLE written_on_b (x int); INSERT INTO written_on_b VALUES (7)")
    finally:
        await conn.close()

    code, out = await acli(
        config,
        "dr",
        "failback",
        "--old-primary-data",
        str(a.data_dir),
        "--standby-data",
        str(b.data_dir),
        "--url-file",
        str(url_file),
    )
    assert code == 0, out
    nodes = await _roles(config)
    assert nodes[str(a.port)]["role"] == "primary"
    assert nodes[str(a.port)]["read_only"] is False
    assert nodes[str(b.port)]["role"] == "standby"
    assert url_file.read_text().strip() == a.conninfo.sqlalchemy_url("auth")
    conn = await asyncpg.connect(a.conninfo.asyncpg_dsn("auth"))
    try:
        assert await conn.fetchval("SELECT x FROM written_on_b") == 7
    finally:
        await conn.close()
    # The failback is recorded in the original primary, which also replayed the failover's.
    recorded = await _audit(a)
    assert recorded["dr.failover"] == failover
    failback = recorded["dr.failback"]
    assert failback["request_id"] == "cli"
    assert failback["old_primary"] == f"127.0.0.1:{b.port}"
    assert failback["new_primary"] == f"127.0.0.1:{a.port}"
    assert failback["lag_bytes"] == 0
    assert "promote original primary" in dict(failback["steps"])
