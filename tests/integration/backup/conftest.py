from __future__ import annotations

import secrets
import uuid
from typing import Any

import pytest

from tests.support.object_store import s3_destination


@pytest.fixture
def backup_key() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture(params=["local", "s3"])
def destination(request: pytest.FixtureRequest, tmp_path: Any) -> dict[str, Any]:
    """The same tests against every storage backend, over the real protocols."""
    if request.param == "local":
        return {"url": f"file://{tmp_path / 'store'}"}
    endpoint: str = request.getfixturevalue("s3_endpoint")
    return s3_destination(endpoint, f"b-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def gcs_endpoint(s3_endpoint: str) -> str:
    """GCS's XML API on loopback: moto's server (gcs_support.py says why, and what it misses)."""
    return s3_endpoint
