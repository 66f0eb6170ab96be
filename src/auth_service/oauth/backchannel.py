"""OpenID Connect Back-Channel Logout 1.0: a signed logout token to every client that
received tokens in a browser session that ended.

The session revoker tells us, inside its transaction, which browser sessions ended
(``sessions.revocation``: logout, sign-out, revocation over the API, an admin disabling the
user, a password reset); the clients that were issued tokens in each one are the clients of
the grants made in it (``GrantSessions.clients_of_browser_sessions``). Each client with a
``backchannel_logout_uri`` gets one job of kind ``backchannel_logout`` in that transaction,
keyed by (sid, client): the durable job queue retries it with backoff until it is dead.

Each attempt signs a fresh logout token (section 2.4: ``iss``, ``aud``, ``iat``, a short
``exp``, ``jti``, ``sub`` and ``sid``, the back-channel ``events`` member, never ``nonce``;
header ``typ`` ``logout+jwt``, section 2.4 and the errata) with the client's ID-token
algorithm, and POSTs it form-encoded (section 2.5) through the same outbound path and SSRF
rules as webhooks (``webhooks.transport``: ``webhooks.allow_http``,
``webhooks.allowed_networks``, ``webhooks.timeout_seconds``, ``webhooks.ca_file``). The
``jti`` is the job's id at every attempt, so a receiver that dedups on it handles a retry
after a lost answer once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.audit import events
from auth_service.audit.context import SYSTEM
from auth_service.audit.service import AuditService
from auth_service.config.settings import WebhookSettings
from auth_service.jobs.kinds import Job, JobKind, PermanentFailure
from auth_service.jobs.queue import JobQueue
from auth_service.keys.service import KeyService
from auth_service.oauth import jose
from auth_service.oauth.clients import ClientService
from auth_service.sessions.grants import GrantSessions
from auth_service.sessions.revocation import EndedSession
from auth_service.webhooks.errors import TargetRefused
from auth_service.webhooks.transport import OutboundPoster

log = structlog.get_logger(__name__)

KIND = "backchannel_logout"
TYP = "logout+jwt"
EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_TTL_SECONDS = 120  # section 2.4: "a short" lifetime; a receiver checks iat anyway
USER_AGENT = "auth-service-backchannel-logout/1"
ERROR_CHARS = 300


class LogoutNotDelivered(Exception):
    """The receiver did not take the logout token; the job is retried."""


def logout_claims(
    issuer: str, client_id: str, subject: str, sid: str, jti: str, now: int
) -> dict[str, Any]:
    """Section 2.4: the claims of a logout token. Never ``nonce`` (section 2.4: it must not
    be one, so it cannot pass as an ID token)."""
    return {
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + TOKEN_TTL_SECONDS,
        "jti": jti,
        "sub": subject,
        "sid": sid,
        "events": {EVENT: {}},
    }


class BackchannelLogout:
    """The session revoker's listener (enqueue) and the job handler (deliver)."""

    def __init__(
        self,
        clients: ClientService,
        keys: KeyService,
        issuer: str,
        audit: AuditService,
        jobs: JobQueue,
        outbound: Callable[[], WebhookSettings],
    ) -> None:
        self._clients = clients
        self._keys = keys
        self._issuer = issuer
        self._audit = audit
        self._jobs = jobs
        self._poster = OutboundPoster(outbound)

    # ---- when sessions end ------------------------------------------------------------------

    async def sessions_ended(self, session: AsyncSession, ended: Sequence[EndedSession]) -> None:
        """One job per (ended browser session, client with a back-channel URI that received
        tokens in it), in the revocation's transaction."""
        by_id = {e.id: e for e in ended}
        pairs = await GrantSessions.clients_of_browser_sessions(session, list(by_id))
        if not pairs:
            return
        receiving = await self._clients.with_backchannel_logout(
            session, sorted({client_id for _sid, client_id in pairs})
        )
        for sid, client_id in pairs:
            if client_id not in receiving:
                continue
            found = by_id[sid]
            await self._jobs.enqueue(
                KIND,
                {"client_id": client_id, "sid": str(sid), "sub": str(found.user_id)},
                key=f"{sid}:{client_id}",
                session=session,
                tenant_id=found.tenant_id,
            )

    # ---- the job ----------------------------------------------------------------------------

    async def __call__(self, job: Job) -> None:
        client_id = str(job.payload.get("client_id", ""))
        client = await self._clients.find(client_id)
        if client is None or client.backchannel_logout_uri is None:
            raise PermanentFailure("the client or its backchannel_logout_uri is gone")
        claims = logout_claims(
            self._issuer,
            client_id,
            str(job.payload["sub"]),
            str(job.payload["sid"]),
            job.id.hex,
            int(time.time()),
        )
        token = await jose.sign(
            self._keys, claims, algorithm=client.id_token_signed_response_alg, typ=TYP
        )
        body = urlencode({"logout_token": token}).encode()
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "user-agent": USER_AGENT,
            "cache-control": "no-store",
        }
        try:
            code = await self._poster.post(client.backchannel_logout_uri, headers, body)
            error = None if 200 <= code < 300 else f"the receiver answered status {code}"
        except TargetRefused as exc:
            error = f"target refused: {exc}"
        except TimeoutError:
            error = "timed out"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await self._outcome(job, error)

    async def _outcome(self, job: Job, error: str | None) -> None:
        details = {
            "client_id": job.payload.get("client_id"),
            "sid": job.payload.get("sid"),
            "attempt": job.attempt,
        }
        subject = _uuid(job.payload.get("sub"))
        log.info("backchannel_logout_attempt", delivered=error is None, **details)
        if error is None:
            await self._audit.record(
                events.OAUTH_BACKCHANNEL_LOGOUT_SENT,
                SYSTEM,
                subject=subject,
                details=details,
                tenant_id=job.tenant_id,
            )
            return
        error = error[:ERROR_CHARS]
        if job.final_attempt:  # the dead letter: say so once, where operators look
            await self._audit.record(
                events.OAUTH_BACKCHANNEL_LOGOUT_FAILED,
                SYSTEM,
                outcome="failure",
                subject=subject,
                details={**details, "error": error},
                tenant_id=job.tenant_id,
            )
        raise LogoutNotDelivered(error)


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def install(
    clients: ClientService,
    keys: KeyService,
    issuer: str,
    audit: AuditService,
    jobs: JobQueue,
    outbound: Callable[[], WebhookSettings],
) -> BackchannelLogout:
    """Back-channel logout of one process: its job kind on ``jobs``; the returned object is
    the session revoker's listener (``SessionRevoker.listener``)."""
    backchannel = BackchannelLogout(clients, keys, issuer, audit, jobs, outbound)
    settings = outbound()
    jobs.register(
        JobKind(
            KIND,
            backchannel,
            max_attempts=settings.max_attempts,
            timeout_seconds=settings.timeout_seconds + 30,
        )
    )
    return backchannel
