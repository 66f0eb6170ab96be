"""CORS whose allowed origins and credentials flag follow configuration hot reload.

Starlette's ``CORSMiddleware`` fixes its options at construction; this wrapper rebuilds it
when the policy changes (docs/adr/0201-hot-reload.md). With no origins it is a pass-through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from auth_service.config.settings import ServerSettings
from auth_service.web.errors import CORS_REFUSED, problem_response


class CorsPolicy:
    """The reloadable part of CORS: which origins, and whether credentials are allowed."""

    def __init__(self, server: ServerSettings) -> None:
        self.version = 0
        self.apply_settings(server)

    def apply_settings(self, server: ServerSettings) -> None:
        """Hot reload: the next request is checked against the new origins."""
        self.origins = list(server.cors_origins)
        self.allow_credentials = server.cors_allow_credentials
        self.version += 1


class ProblemCORS(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered from the problem catalogue.

    Starlette answers it with a text/plain 400 that still carries the configured
    ``Access-Control-Allow-Credentials``, ``-Methods`` and ``-Headers``: a refusal grants
    nothing, so it carries no ``Access-Control-*`` header at all (Fetch fails the preflight on
    the status anyway), only ``Vary: Origin`` for caches.
    """

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        # Starlette's body names what was refused: "Disallowed CORS origin, headers".
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        return problem_response(
            CORS_REFUSED, detail=f"not allowed: {refused}", headers={"Vary": "Origin"}
        )


class ReloadableCORS:
    def __init__(
        self,
        app: ASGIApp,
        policy: CorsPolicy,
        allow_methods: Sequence[str] = ("GET",),
        allow_headers: Sequence[str] = (),
        expose_headers: Sequence[str] = (),
        max_age: int = 600,
    ) -> None:
        self.app = app
        self.policy = policy
        self.options: dict[str, Any] = {
            "allow_methods": allow_methods,
            "allow_headers": allow_headers,
            "expose_headers": expose_headers,
            "max_age": max_age,
        }
        self._built: tuple[int, ASGIApp] = (-1, app)

    def _current(self) -> ASGIApp:
        version, inner = self._built
        if version != self.policy.version:
            inner = self.app
            if self.policy.origins:
                inner = ProblemCORS(
                    self.app,
                    allow_origins=self.policy.origins,
                    allow_credentials=self.policy.allow_credentials,
                    **self.options,
                )
            self._built = (self.policy.version, inner)
        return inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._current()(scope, receive, send)
