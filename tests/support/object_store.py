"""pytest plugin: S3 over its real protocol, from moto's server on loopback (backup storage,
and the store DR observers share)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.support.net import free_port, wait_port
from tests.support.services import service_missing


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 in server mode on loopback: the real S3 protocol over HTTP."""
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        service_missing("moto[server]", f"{exc} (make install-dev)")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def s3_destination(endpoint: str, bucket: str) -> dict[str, Any]:
    """A new bucket on ``endpoint``, as a backup destination."""
    httpx.put(f"{endpoint}/{bucket}").raise_for_status()
    return {
        "url": f"s3://{bucket}/auth",
        "endpoint": endpoint,
        "region": "us-east-1",
        "allow_http": True,
        "options": {"access_key_id": "test", "secret_access_key": "test"},
    }


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint
