"""What each serving worker runs first: the ASGI application ``auth-service serve`` hands to
uvicorn, built in the worker from the settings the command loaded.

uvicorn spawns its workers, so a worker imports this module to unpickle the factory: it lives
outside ``auth_service.cli`` because the command line's modules (typer, rich, every command)
would otherwise be imported into every serving worker and stay resident for its lifetime
(ADR 0437).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auth_service.config.loader import load_settings

# glibc gives each thread that allocates its own malloc arena (up to 8 per core), and the
# hashing threads' 7-19 MiB argon2 buffers then stay resident in every one of them: most of
# a worker's RSS growth under login load (bench/README.md). Two arenas keep the hashing
# threads from contending on one lock while bounding that memory.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt() parameter number


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process, before its threads start.

    An explicit ``MALLOC_ARENA_MAX`` in the environment wins (glibc has applied it already).
    Returns whether the cap was set here (False on other C libraries).
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    import ctypes

    try:
        process = ctypes.CDLL(None)  # the C library this interpreter is linked against
        return bool(process.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to cap
        return False


@dataclass(frozen=True)
class WorkerLaunch:
    """Where every worker takes its settings from: the config file ``serve`` loaded and its
    command-line flags (dotted keys), which win over files and environment at start and at
    every reload. Each worker receives it by value, bound into the factory uvicorn calls
    (and pickles to the workers it spawns): not through the environment, not a global."""

    config_file: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


def asgi_factory(launch: WorkerLaunch | None = None) -> object:
    """Entry point of each worker. Without ``launch`` (``uvicorn --factory``, the benchmarks)
    settings come from the files and environment alone."""
    limit_malloc_arenas()
    from auth_service.app import PortDispatcher, create_app
    from auth_service.observability.logging import configure_logging

    launch = launch or WorkerLaunch()
    loaded = load_settings(launch.config_file, overrides=launch.overrides)
    settings = loaded.settings
    configure_logging(settings.logging, settings.env)
    app = create_app(settings)
    app.state.hot_reload = True
    app.state.freeze_after_start = True  # app._lifespan: gc.freeze() once started
    app.state.config_file = loaded.config_file
    app.state.settings_overrides = launch.overrides
    return PortDispatcher(app, settings.server.management_port)
