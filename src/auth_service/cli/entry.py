"""Console-script entry point: `healthcheck` takes a fast path that skips the service imports."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["healthcheck"]:
        from auth_service.cli.probe import standalone

        raise SystemExit(standalone(sys.argv[2:]))
    from auth_service.cli.main import main as full_cli

    full_cli()
