"""uvicorn's Config whose listeners serve HTTPS from ``server.tls`` (ADR 0310).

uvicorn builds its SSL context once from file names; ours is built in each worker as it
loads (inside that worker's event loop) together with the task that loads a rotated
certificate into the same context. Imported only when ``serve`` starts uvicorn; a module of
its own so the class pickles to spawned workers by name.
"""

from __future__ import annotations

import asyncio

import uvicorn

from auth_service.config.tls import ServerTLSSettings
from auth_service.security.server_tls import ReloadingServerContext


class TLSConfig(uvicorn.Config):
    tls: ServerTLSSettings | None = None
    tls_watch: asyncio.Task[None] | None = None

    def load(self) -> None:
        super().load()
        tls = self.tls
        if tls is None or tls.cert_path is None or tls.key_path is None:
            return
        reloading = ReloadingServerContext(tls.cert_path, tls.key_path)
        self.ssl = reloading.context
        self.tls_watch = asyncio.get_running_loop().create_task(
            reloading.watch(tls.reload_interval_seconds), name="tls-certificate-reload"
        )
