"""The user's side of the device authorization grant (RFC 8628 section 3.3): the user
code entered on ``/device``, rate limited, and the user's answer after sign-in.

Every entry counts toward two windows before the code is looked up: the client network's
(``ip.device_code``, the network as the lockout cuts it) and the browser's
(``session.device_code``, keyed by a digest of the page's anti-forgery cookie). Guessing is
bounded per network and per browser (section 5.1); a full window is the same 429 as any
other limit, audited as ``rate_limit.exceeded``. A code that is wrong, expired, used or
answered gets one and the same answer: None.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from auth_service.accounts.guard import AttemptGuard
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.config.settings import Settings
from auth_service.oauth.authorization import Authenticated
from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.consent import ConsentStore
from auth_service.oauth.rfc8628 import DeviceAuthorizations, PendingDevice
from auth_service.security.lockout import client_network
from auth_service.security.ratelimit import Limiter


@dataclass(frozen=True)
class DeviceRequest:
    """A pending device authorization and its client, as the pages show it."""

    device: PendingDevice
    client: Client


class DeviceEntry:
    def __init__(
        self,
        devices: DeviceAuthorizations,
        clients: ClientService,
        consents: ConsentStore,
        guard: AttemptGuard | None,
        audit: AuditService,
        settings: Callable[[], Settings],
    ) -> None:
        self._devices = devices
        self._clients = clients
        self._consents = consents
        self._guard = guard
        self._audit = audit
        self._settings = settings

    async def enter(
        self, user_code: str, ctx: RequestContext, *, browser: str
    ) -> DeviceRequest | None:
        """The pending authorization of ``user_code`` (as typed), or None for any code that
        cannot be answered. Raises RateLimited (counted before the lookup)."""
        if self._guard is not None:
            network = client_network(self._settings().lockout, ctx.ip)
            await self._guard.count(Limiter.ip_device_code, network, ctx)
            key = hashlib.sha256(browser.encode()).hexdigest()
            await self._guard.count(Limiter.session_device_code, key, ctx)
        device = await self._devices.pending(user_code)
        return await self._with_client(device)

    async def resume(self, device_id: uuid.UUID) -> DeviceRequest | None:
        """The authorization a parked page flow names, while it still waits for an answer."""
        return await self._with_client(await self._devices.pending_by_id(device_id))

    async def _with_client(self, device: PendingDevice | None) -> DeviceRequest | None:
        if device is None:
            return None
        client = (await self._clients.by_pk([device.client_pk])).get(device.client_pk)
        return DeviceRequest(device, client) if client is not None else None

    async def answer(
        self, found: DeviceRequest, session: Authenticated, *, allow: bool, ctx: RequestContext
    ) -> bool:
        """The signed-in user's answer. Allowing remembers the consent like the
        authorization endpoint's. False when the request expired or was answered meanwhile."""
        approval = None
        if allow:
            approval = {
                "auth_time": session.auth_time.isoformat(),
                "acr": session.acr,
                "amr": list(session.amr),
            }
        answered = await self._devices.answer(
            found.device, user_id=session.user_id, approval=approval
        )
        if not answered:
            return False
        if allow:
            await self._consents.grant(session.user_id, found.client, found.device.scopes, ctx)
        await self._audit.record(
            events.OAUTH_DEVICE_APPROVED if allow else events.OAUTH_DEVICE_DENIED,
            ctx,
            outcome="success" if allow else "denied",
            subject=session.user_id,
            details={"client_id": found.client.client_id, "scope": " ".join(found.device.scopes)},
        )
        return True
