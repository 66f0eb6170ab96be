"""The health probe behind `auth-service healthcheck`, importing only the standard library.

Container HEALTHCHECKs run it every few seconds; importing the whole service for each run
would cost about a CPU-second every time (see cli/entry.py).
"""

from __future__ import annotations

import argparse
import ssl
import sys
import urllib.error
import urllib.request

PROBES = ("live", "ready", "started")
DEFAULT_URL = "http://127.0.0.1:9000/health/{probe}"


def check(
    probe: str, url: str | None, timeout: float, cafile: str | None = None
) -> tuple[int, str]:
    """Exit code (0 healthy, 1 unhealthy, 2 usage error) and a one-line message.

    ``cafile``: the PEM CA (or the certificate itself) an https URL is verified against,
    for a service with its own certificate (server.tls); the system store otherwise."""
    if probe not in PROBES:
        return 2, "error: --probe must be live, ready or started"
    target = url or DEFAULT_URL.format(probe=probe)
    if not target.startswith(("http://", "https://")):
        return 2, "error: --url must be http(s)"
    try:
        context = ssl.create_default_context(cafile=cafile) if cafile else None
    except (OSError, ssl.SSLError) as exc:
        return 2, f"error: --cafile {cafile}: {exc}"
    try:
        with urllib.request.urlopen(target, timeout=timeout, context=context) as response:  # noqa: S310 - scheme checked
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return 1, f"unhealthy: {target}: HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        return 1, f"unhealthy: {target}: {exc}"
    return (0, "healthy") if status == 200 else (1, f"unhealthy: {target}: HTTP {status}")


def standalone(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="auth-service healthcheck", description="Exit 0 when the probe answers 200."
    )
    parser.add_argument("--probe", default="live", help="live, ready or started")
    parser.add_argument("--url", default=None, help="probe URL (default: management port)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds")
    parser.add_argument("--cafile", default=None, help="PEM CA an https --url is checked with")
    args = parser.parse_args(argv)
    code, message = check(args.probe, args.url, args.timeout, args.cafile)
    if code:
        print(message, file=sys.stderr)
    return code
