"""Posting to a receiver outside: the one outbound HTTP path of webhooks and of OpenID
Connect back-channel logout (``oauth.backchannel``), under the ``webhooks`` settings.

Each post resolves and checks the target again (``targets``: the SSRF rules), connects to a
checked address (never resolving the name again), does not follow redirects, and reads at
most ``webhooks.max_response_bytes`` of the answer.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path

import certifi
import httpx

from auth_service.config.settings import WebhookSettings
from auth_service.webhooks.targets import IPAddress, Target, resolve


class OutboundPoster:
    """POSTs a body to a checked target. ``post`` raises TargetRefused (the SSRF rules),
    TimeoutError or httpx.HTTPError; otherwise it returns the status code."""

    def __init__(self, settings: Callable[[], WebhookSettings]) -> None:
        self._settings = settings
        self._tls_context: ssl.SSLContext | None = None
        self._tls_for: Path | None = None

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> int:
        settings = self._settings()
        target = await resolve(url, settings)
        headers = {**headers, "host": target.host_header}
        async with asyncio.timeout(settings.timeout_seconds):
            return await self._post_first(target, headers, body)

    async def _post_first(self, target: Target, headers: dict[str, str], body: bytes) -> int:
        """POST to the first address that accepts a connection."""
        *others, last = target.addresses
        for address in others:
            try:
                return await self._post(target, address, headers, body)
            except httpx.ConnectError:
                continue
        return await self._post(target, last, headers, body)

    async def _post(
        self, target: Target, address: IPAddress, headers: dict[str, str], body: bytes
    ) -> int:
        """POST to the checked address (TLS still checks the certificate of the host name),
        read at most the response cap, return the status code."""
        settings = self._settings()
        cap = settings.max_response_bytes
        extensions = {"sni_hostname": target.url.host} if target.url.scheme == "https" else {}
        async with (
            httpx.AsyncClient(
                verify=self._tls(settings.ca_file),
                timeout=settings.timeout_seconds,
                follow_redirects=False,
                trust_env=False,
            ) as client,
            client.stream(
                "POST",
                target.pinned_url(address),
                content=body,
                headers=headers,
                extensions=extensions,
            ) as response,
        ):
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= cap:
                    break
            return response.status_code

    def _tls(self, ca_file: Path | None) -> ssl.SSLContext:
        """The public CAs (certifi, as httpx's default), plus ``webhooks.ca_file``."""
        if self._tls_context is None or self._tls_for != ca_file:
            context = ssl.create_default_context(cafile=certifi.where())
            if ca_file is not None:
                context.load_verify_locations(cafile=ca_file)
            self._tls_context, self._tls_for = context, ca_file
        return self._tls_context
