"""The device authorization grant (RFC 8628): a device without a browser (a TV, a CLI)
asks for a device code and a user code, shows the user code, and polls the token endpoint
while the user enters the code on ``/device`` from another screen, signs in and consents.

- Device authorization (section 3.1): authenticated as at the token endpoint; the client
  must be registered for the grant. The device code is 256 random bits; the user code is
  eight characters of ``BCDFGHJKLMNPQRSTVWXZ`` (no vowels, no look-alikes: 20^8, about 34
  bits), shown ``XXXX-XXXX`` and compared ignoring case, spaces and dashes (section 6.1).
  Both are stored only as SHA-256 (ADR 0740).
- Entering a user code (section 3.3) is rate limited per client network and per browser
  (``ip.device_code``, ``session.device_code``: section 5.1), and a wrong, expired or used
  code gets one answer that says nothing about which.
- Polling (section 3.4, 3.5): ``authorization_pending`` until the user answers;
  ``slow_down`` when the client polls sooner than its interval, which then grows by 5
  seconds; ``expired_token`` after ``expires_in``; ``access_denied`` when the user denied.
  An approved code is redeemed once, by the conditional UPDATE that opens the grant.

``clock`` is injectable (tests move time instead of sleeping through intervals).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from auth_service.config.settings import Settings
from auth_service.db.base import utcnow
from auth_service.db.engine import Backend, Database
from auth_service.oauth.authorization import check_resources
from auth_service.oauth.client_metadata import DEVICE_CODE
from auth_service.oauth.clients import Client
from auth_service.oauth.codes import CodeRecord
from auth_service.oauth.errors import (
    AccessDenied,
    InvalidGrant,
    InvalidScope,
    OAuthError,
    UnauthorizedClient,
)
from auth_service.oauth.models import DeviceCode
from auth_service.oauth.request import EndpointRequest
from auth_service.oauth.scopes import parse_scope
from auth_service.security.random import new_token, token_digest
from auth_service.sessions.grants import PreparedGrant

GRANT_TYPE = DEVICE_CODE
DEVICE_AUTHORIZATION = "/oauth2/device_authorization"
VERIFICATION = "/device"
# Consonants without vowels (no words) and without look-alikes (no 0/O, 1/I/L... only L
# stays, as it has no look-alike once I is gone): RFC 8628 section 6.1's example alphabet.
ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
SLOW_DOWN_SECONDS = 5  # section 3.5: "the interval MUST be increased by 5 seconds"
MAX_DEVICE_CODE_LENGTH = 256
MAX_USER_CODE_INPUT = 32

Clock = Callable[[], datetime]


class AuthorizationPending(OAuthError):
    """Section 3.5: the user has not answered yet."""

    error = "authorization_pending"


class SlowDown(OAuthError):
    """Section 3.5: polling faster than the interval (which grows by 5 seconds)."""

    error = "slow_down"


class ExpiredToken(OAuthError):
    """Section 3.5: the device code expired; the device must start again."""

    error = "expired_token"


def new_user_code() -> str:
    """Eight characters of ``ALPHABET``, shown as ``XXXX-XXXX``."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(USER_CODE_LENGTH))
    return f"{code[:4]}-{code[4:]}"


def normalise_user_code(text: str) -> str | None:
    """What the user typed, uppercased without spaces and dashes, or None when it cannot be
    a user code of ours (section 6.1: compare case-insensitively, ignore punctuation)."""
    if len(text) > MAX_USER_CODE_INPUT:
        return None
    code = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(code) != USER_CODE_LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def _user_code_digest(normalised: str) -> bytes:
    return hashlib.sha256(("device-user-code:" + normalised).encode()).digest()


@dataclass(frozen=True)
class PendingDevice:
    """A device authorization waiting for the user's answer on /device."""

    id: uuid.UUID
    client_pk: uuid.UUID
    tenant_id: uuid.UUID
    scopes: tuple[str, ...]
    request: dict[str, Any]


class DeviceAuthorizations:
    def __init__(
        self, db: Database, settings: Callable[[], Settings], *, clock: Clock = utcnow
    ) -> None:
        self._db = db
        self._settings = settings
        self.clock = clock

    def verification_uri(self) -> str:
        return self._settings().server.public_url.rstrip("/") + VERIFICATION

    def metadata(self, issuer: str) -> dict[str, Any]:
        """RFC 8628 section 4: what discovery says."""
        return {"device_authorization_endpoint": issuer + DEVICE_AUTHORIZATION}

    async def start(self, request: EndpointRequest, client: Client) -> dict[str, Any]:
        """Section 3.1 and 3.2, for the authenticated ``client``: the device code, the user
        code and where to enter it. Raises OAuthError."""
        if GRANT_TYPE not in client.grant_types:
            raise UnauthorizedClient("this client may not use the device authorization grant")
        asked = parse_scope(request.params.get("scope"))
        refused = [s for s in asked if s not in client.scopes]
        if refused:
            raise InvalidScope(f"scope {refused[0]!r} is not allowed for this client")
        scopes = asked or client.scopes
        resources = check_resources(request.params.all("resource"), client)
        oauth = self._settings().oauth
        device_code = new_token()
        now = self.clock()
        for _ in range(5):  # a user code still live elsewhere: draw again
            user_code = new_user_code()
            try:
                async with self._db.single() as conn:
                    await conn.execute(
                        insert(DeviceCode).values(
                            id=uuid.uuid4(),
                            tenant_id=client.tenant_id,
                            device_code_hash=token_digest(device_code),
                            user_code_hash=_user_code_digest(normalise_user_code(user_code) or ""),
                            client_pk=client.pk,
                            request={"scope": " ".join(scopes), "resources": list(resources)},
                            status="pending",
                            interval=oauth.device_code_interval_seconds,
                            created_at=now,
                            expires_at=now + timedelta(seconds=oauth.device_code_ttl_seconds),
                        )
                    )
                break
            except IntegrityError:
                continue
        else:  # pragma: no cover - 5 collisions in 20^8 codes
            raise OAuthError("no user code available; try again")
        uri = self.verification_uri()
        return {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": uri,
            "verification_uri_complete": f"{uri}?user_code={user_code}",
            "expires_in": oauth.device_code_ttl_seconds,
            "interval": oauth.device_code_interval_seconds,
        }

    async def pending(self, user_code: str) -> PendingDevice | None:
        """The live, unanswered authorization of this user code (as typed), or None."""
        normalised = normalise_user_code(user_code)
        if normalised is None:
            return None
        return await self._pending(DeviceCode.user_code_hash == _user_code_digest(normalised))

    async def pending_by_id(self, device_id: uuid.UUID) -> PendingDevice | None:
        return await self._pending(DeviceCode.id == device_id)

    async def _pending(self, where: Any) -> PendingDevice | None:
        async with self._db.single() as conn:
            row = (
                await conn.execute(
                    select(
                        DeviceCode.id,
                        DeviceCode.client_pk,
                        DeviceCode.tenant_id,
                        DeviceCode.request,
                    ).where(
                        where,
                        DeviceCode.status == "pending",
                        DeviceCode.expires_at > self.clock(),
                    )
                )
            ).first()
        if row is None:
            return None
        request = dict(row.request)
        scopes = tuple(str(request.get("scope", "")).split())
        return PendingDevice(row.id, row.client_pk, row.tenant_id, scopes, request)

    async def answer(
        self, device: PendingDevice, *, user_id: uuid.UUID, approval: dict[str, Any] | None
    ) -> bool:
        """The user's answer: ``approval`` (auth_time, acr, amr) allows, None denies. False
        when the authorization was answered or expired meanwhile."""
        values: dict[str, Any] = {"status": "denied" if approval is None else "approved"}
        values["user_id"] = user_id
        if approval is not None:
            values["request"] = {**device.request, **approval}
        async with self._db.single() as conn:
            result = await conn.execute(
                update(DeviceCode)
                .where(
                    DeviceCode.id == device.id,
                    DeviceCode.status == "pending",
                    DeviceCode.expires_at > self.clock(),
                )
                .values(**values)
            )
        return bool(result.rowcount)

    async def redeem(
        self,
        device_code: str,
        client_pk: uuid.UUID,
        open_grant: Callable[[CodeRecord], PreparedGrant],
    ) -> tuple[CodeRecord, PreparedGrant]:
        """Section 3.4 and 3.5: one poll of the device. The approved code is spent and its
        grant opened in one transaction. Raises AuthorizationPending, SlowDown,
        ExpiredToken, AccessDenied or InvalidGrant (unknown, another client's, used)."""
        if not device_code or len(device_code) > MAX_DEVICE_CODE_LENGTH:
            raise InvalidGrant("the device code is invalid")
        digest = token_digest(device_code)
        failure: OAuthError | None = None
        async with self._db.transaction() as s:
            now = self.clock()
            query = select(DeviceCode).where(
                DeviceCode.device_code_hash == digest, DeviceCode.client_pk == client_pk
            )
            if self._db.backend is Backend.postgresql:
                query = query.with_for_update()
            row = (await s.scalars(query)).first()
            failure = _refusal(row, now)
            if row is not None and failure is None and row.status == "pending":
                too_soon = row.last_polled_at is not None and now - row.last_polled_at < (
                    timedelta(seconds=row.interval)
                )
                if too_soon:
                    row.interval += SLOW_DOWN_SECONDS
                    failure = SlowDown(f"poll at most every {row.interval} seconds")
                else:
                    failure = AuthorizationPending("the user has not answered yet")
                row.last_polled_at = now
            elif row is not None and failure is None:
                assert row.user_id is not None
                row.used_at = row.last_polled_at = now
                record = CodeRecord(row.user_id, row.tenant_id, dict(row.request))
                prepared = open_grant(record)
                for statement in prepared.statements:
                    await s.execute(statement)
                row.grant_id = prepared.id
        if failure is not None:
            raise failure
        return record, prepared


def _refusal(row: DeviceCode | None, now: datetime) -> OAuthError | None:
    """Why a poll gets no tokens whatever the interval: the final answers of section 3.5."""
    if row is None:
        return InvalidGrant("the device code is invalid or not this client's")
    if row.used_at is not None:
        return InvalidGrant("the device code was already used")
    if now >= row.expires_at:
        return ExpiredToken("the device code expired")
    if row.status == "denied":
        return AccessDenied("the user denied the request")
    return None
