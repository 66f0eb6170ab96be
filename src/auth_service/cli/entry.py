"""Console-script entry point: `healthcheck` takes a fast path that skips the service imports."""

from __future__ import annotations

import os
import sys

# Commands that PostgreSQL runs once per WAL file. After their work is done they leave
# without interpreter finalisation: obstore 0.12's async runtime occasionally aborts the
# process while it is torn down (SIGABRT, exit 134, after the object was written), and
# PostgreSQL treats an archive_command killed by a signal as fatal for its archiver. There
# is nothing left to clean up at that point; the output streams are flushed first.
# The housekeeping commands that may touch the backup destinations (audit.archive) leave the
# same way, for the same reason.
_EXIT_WITHOUT_FINALISATION = (
    ["backup", "wal-push"],
    ["backup", "wal-fetch"],
    ["housekeeping", "run"],
    ["housekeeping", "archives"],
    ["housekeeping", "archive-show"],
)


def _subcommand(argv: list[str]) -> list[str]:
    """The command words of ``argv`` (global options such as ``--config X`` skipped)."""
    words: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--config", "-c"):
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
    return words


def main() -> None:
    if sys.argv[1:2] == ["healthcheck"]:
        from auth_service.cli.probe import standalone

        raise SystemExit(standalone(sys.argv[2:]))
    from auth_service.cli.main import main as full_cli

    if _subcommand(sys.argv[1:])[:2] not in _EXIT_WITHOUT_FINALISATION:
        full_cli()
        return
    try:
        full_cli()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
