"""`auth-service serve`: uvicorn with a public and a management listener, N workers."""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from auth_service.asgi import WorkerLaunch, asgi_factory
from auth_service.cli.common import err, fail, loaded_settings
from auth_service.config.settings import ServerSettings

if TYPE_CHECKING:
    from uvicorn.supervisors import Multiprocess


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


WORKER_HEALTHCHECK_SECONDS = 60


def _healthcheck_timeout(config: type[object]) -> dict[str, Any]:
    """``timeout_worker_healthcheck`` where this uvicorn has it (0.30 and later)."""
    parameters = inspect.signature(config.__init__).parameters
    if "timeout_worker_healthcheck" in parameters:
        return {"timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS}
    return {}


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
        # uvicorn's supervisor kills a worker that does not answer its ping within this time,
        # and a spawned worker answers only once it has imported the service: 5 s (uvicorn's
        # default) was exceeded on a loaded 2-core machine (load 13-16), and every worker was
        # killed and respawned in a loop, never serving (ADR 0436).
        **_healthcheck_timeout(uvicorn.Config),
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
