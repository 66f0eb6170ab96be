"""`auth-service serve`: uvicorn with a public and a management listener, N workers."""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from auth_service.cli.common import err, fail, loaded_settings
from auth_service.config.loader import load_settings
from auth_service.config.settings import ServerSettings

if TYPE_CHECKING:
    from uvicorn.supervisors import Multiprocess

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


def _forwarding_supervisor() -> type[Multiprocess]:
    """uvicorn's supervisor restarts workers on SIGHUP; we reload config in place instead."""
    import signal

    from uvicorn.supervisors import Multiprocess as Base

    class Supervisor(Base):
        def handle_hup(self) -> None:
            for process in self.processes:
                if process.pid is not None:
                    os.kill(process.pid, signal.SIGHUP)

    return Supervisor


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise fail(
            f"cannot listen on {host}:{port} ({exc.strerror}); is another server running?"
        ) from None
    sock.set_inheritable(True)
    return sock


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="public listener address")] = None,
    port: Annotated[int | None, typer.Option(help="public listener port")] = None,
    management_port: Annotated[
        int | None, typer.Option(help="metrics and probes port (0: public)")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="worker processes")] = None,
) -> None:
    """Serve the API (default http://127.0.0.1:8000) and management (:9000)."""
    from auth_service.services import StartupError, check_production_safety, load_master_key

    flags = {
        "server.host": host,
        "server.port": port,
        "server.management_port": management_port,
        "server.workers": workers,
    }
    overrides = {key: value for key, value in flags.items() if value is not None}
    loaded = loaded_settings(ctx, overrides)
    settings = loaded.settings
    try:
        load_master_key(settings)
        check_production_safety(settings)
    except StartupError as exc:
        raise fail(str(exc)) from None
    server = settings.server
    _prepare_metrics_dir(server.workers)
    sockets = [_bind(server.host, server.port)]
    if server.management_port and server.management_port != server.port:
        sockets.append(_bind(server.management_host, server.management_port))
    config_file = loaded.config_file.resolve() if loaded.config_file else None
    scheme = "https" if server.tls.enabled else "http"
    err.print(
        f"auth-service listening on {scheme}://{server.host}:{server.port} "
        f"(management :{server.management_port or server.port}, workers {server.workers})"
    )
    _run_uvicorn(WorkerLaunch(config_file, overrides), server, sockets)


def _prepare_metrics_dir(workers: int) -> None:
    """Several workers share their metrics through files (prometheus_client's multiprocess
    mode). The library reads PROMETHEUS_MULTIPROC_DIR from the environment in each worker:
    the one variable serve sets for them."""
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="auth-service-metrics-")
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        # Stale files from a previous run would be summed into this run's metrics.
        shutil.rmtree(metrics_dir, ignore_errors=True)
        Path(metrics_dir).mkdir(parents=True, exist_ok=True)


def _run_uvicorn(
    launch: WorkerLaunch, server: ServerSettings, sockets: list[socket.socket]
) -> None:
    import uvicorn

    from auth_service.cli.tls_listener import TLSConfig
    from auth_service.web.protocol import http_protocol

    config = TLSConfig(
        functools.partial(asgi_factory, launch),
        factory=True,
        workers=server.workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # X-Forwarded-For is handled by our trusted-proxy logic
        server_header=False,
        timeout_graceful_shutdown=int(server.graceful_shutdown_seconds),
        lifespan="on",
        http=http_protocol(),  # problem+json for requests the HTTP parser refuses
    )
    config.tls = server.tls
    uv_server = uvicorn.Server(config)
    if server.workers == 1:
        uv_server.run(sockets=sockets)
        return
    supervisor = _forwarding_supervisor()
    # uvicorn 0.50 dropped the ``target`` argument; support both shapes.
    if "target" in inspect.signature(supervisor.__init__).parameters:
        supervisor(config, target=uv_server.run, sockets=sockets).run()  # type: ignore[call-arg]
    else:
        supervisor(config, sockets=sockets).run()
