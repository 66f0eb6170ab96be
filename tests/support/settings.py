"""Settings of an in-process service under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from auth_service.config.settings import Settings
from auth_service.security.aead import MasterKey

# One master key for the whole session: subprocesses and in-process services share databases.
TEST_MASTER_KEY = MasterKey.generate_text()
PASSWORD = "Tr0ub4dor&3-horse"


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    """Test settings: cheap argon2 so the suite is fast; generous limits unless a test sets them."""
    data: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "master_key": TEST_MASTER_KEY,
        "database": {"url": database_url},
        "passwords": {"argon2_memory_cost_kib": 1024, "argon2_time_cost": 1, "hash_concurrency": 2},
        "rate_limits": {
            "login_per_ip": "1000/minute",
            "login_per_account": "1000/minute",
            "register_per_ip": "1000/minute",
            "forgot_per_ip": "1000/minute",
            "forgot_per_account": "1000/minute",
            "reset_per_ip": "1000/minute",
            "refresh_per_ip": "1000/minute",
            "verify_per_ip": "1000/minute",
            "device_code_per_network": "1000/minute",
            "device_code_per_session": "1000/minute",
        },
        "mail": {"max_attempts": 2, "retry_base_seconds": 0.05},
        # No scheduled housekeeping run racing a test's own (tests enable it when they mean it).
        "housekeeping": {"enabled": False},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Settings(**data)


def write_config(path: Path, data: dict[str, Any]) -> Path:
    """A config file for the CLI or a server."""
    path.write_text(yaml.safe_dump(data))
    return path
