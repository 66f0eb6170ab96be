"""What the automatic-failover tests share: fast observer settings and a node's address."""

from __future__ import annotations

from auth_service.backup import pgtools

# Short enough for a test, and still valid settings (at least two probes per window).
FAST = {
    "enabled": True,
    "unreachable_seconds": 1.0,
    "quorum": 2,
    "observation_ttl_seconds": 2.0,
    "probe_interval_seconds": 0.25,
}


def node_info(port: int) -> pgtools.ConnInfo:
    """The service's database on a throwaway cluster's port."""
    return pgtools.ConnInfo("127.0.0.1", port, "postgres", None, "auth")
