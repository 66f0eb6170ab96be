"""`auth-service serve`: uvicorn with a public and a management listener, N workers."""

from __future__ import annotations

import inspect
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from auth_service.cli.common import err, fail, loaded_settings
from auth_service.config.loader import load_settings

if TYPE_CHECKING:
    from uvicorn.supervisors import Multiprocess

ASGI_FACTORY = "auth_service.cli.serve_cmd:asgi_factory"


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


def asgi_factory() -> object:
    """Entry point for each worker: settings come from the same files and environment."""
    limit_malloc_arenas()
    from auth_service.app import PortDispatcher, create_app
    from auth_service.observability.logging import configure_logging

    loaded = load_settings(
        Path(os.environ["AUTH_CONFIG"]) if os.environ.get("AUTH_CONFIG") else None
    )
    settings = loaded.settings
    configure_logging(settings.logging, settings.env)
    app = create_app(settings)
    app.state.hot_reload = True
    app.state.config_file = loaded.config_file
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
    import uvicorn

    from auth_service.services import StartupError, check_production_safety, load_master_key
    from auth_service.web.protocol import http_protocol

    loaded = loaded_settings(ctx)
    # Command-line flags win over files and environment; workers read them from the env.
    overrides = {
        "AUTH_SERVER__HOST": host,
        "AUTH_SERVER__PORT": port,
        "AUTH_SERVER__MANAGEMENT_PORT": management_port,
        "AUTH_SERVER__WORKERS": workers,
    }
    for var, value in overrides.items():
        if value is not None:
            os.environ[var] = str(value)
    if loaded.config_file is not None:
        os.environ["AUTH_CONFIG"] = str(loaded.config_file.resolve())
    settings = loaded_settings(ctx).settings
    try:
        check_production_safety(settings, load_master_key(settings))
    except StartupError as exc:
        raise fail(str(exc)) from None

    server = settings.server
    if server.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="auth-service-metrics-")
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        # Stale files from a previous run would be summed into this run's metrics.
        shutil.rmtree(metrics_dir, ignore_errors=True)
        Path(metrics_dir).mkdir(parents=True, exist_ok=True)

    sockets = [_bind(server.host, server.port)]
    if server.management_port and server.management_port != server.port:
        sockets.append(_bind(server.management_host, server.management_port))
    config = uvicorn.Config(
        ASGI_FACTORY,
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
    err.print(
        f"auth-service listening on http://{server.host}:{server.port} "
        f"(management :{server.management_port or server.port}, workers {server.workers})"
    )
    uv_server = uvicorn.Server(config)
    if server.workers > 1:
        supervisor = _forwarding_supervisor()
        # uvicorn 0.50 dropped the ``target`` argument; support both shapes.
        if "target" in inspect.signature(supervisor.__init__).parameters:
            supervisor(config, target=uv_server.run, sockets=sockets).run()  # type: ignore[call-arg]
        else:
            supervisor(config, sockets=sockets).run()
    else:
        uv_server.run(sockets=sockets)
