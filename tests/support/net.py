"""Loopback ports and readiness of the servers tests start."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Callable

import httpx

from tests.support.wait import NotInTime, wait_for


def free_port() -> int:
    """A loopback port nothing listens on now (the caller binds it soon after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, timeout: float = 30) -> None:
    wait_for(lambda: listening(port), timeout, f"nothing listening on {port}")


def wait_ready(
    process: subprocess.Popen[bytes],
    url: str,
    timeout: float,
    also: Callable[[], bool] = lambda: True,
    verify: ssl.SSLContext | bool = True,
) -> bool:
    """Poll ``url`` until it answers 200 (and ``also()`` holds); fail if the process exits.

    False when ``timeout`` passed first (the caller says what it was waiting for).
    """

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{process.args!r} exited with {process.returncode}")
        try:
            return httpx.get(url, timeout=1, verify=verify).status_code == 200 and also()
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout, url, interval=0.2)
    except NotInTime:
        return False
    return True
