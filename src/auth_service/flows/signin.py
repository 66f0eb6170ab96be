"""Sign-in: one engine, two faces.

The JSON API (``POST /v1/auth/login``) and the hosted page (``POST /login``) run the same
steps: check the credentials (``Credentials.verify_login``: limits, lockout, constant work),
then open a session — an API session with tokens, or a browser session with a cookie. What
must survive between two requests of a sign-in (where to continue afterwards: a same-origin
``return_to``, or a pending OAuth2 authorization; later a second factor) is a ``Flow``
bound to the browser; a one-step sign-in writes no flow at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auth_service.accounts.credentials import Credentials, VerifiedLogin
from auth_service.audit.context import RequestContext
from auth_service.flows.store import Flow, FlowKind, FlowStore
from auth_service.observability import metrics
from auth_service.security.passwords import HashingOverloaded
from auth_service.security.ratelimit import RateLimited
from auth_service.sessions.service import BrowserSession, SessionService, TokenPair


@dataclass(frozen=True)
class BrowserSignIn:
    """A browser signed in: its new session and the cookie value that names it."""

    session_id: uuid.UUID
    cookie: str


class SignIn:
    def __init__(
        self,
        credentials: Credentials,
        sessions: SessionService,
        flows: FlowStore,
        tenant_id: Callable[[], uuid.UUID],
    ) -> None:
        self._credentials = credentials
        self._sessions = sessions
        self._flows = flows
        self._tenant_id = tenant_id

    async def password(self, email: str, password: str, ctx: RequestContext) -> VerifiedLogin:
        """The password step. Raises RateLimited, AccountLocked, InvalidCredentials,
        AccountDisabled or HashingOverloaded (each counted in ``auth_logins_total``)."""
        try:
            return await self._credentials.verify_login(email, password, ctx)
        except RateLimited:
            metrics.LOGINS.labels("rate_limited").inc()
            raise
        except HashingOverloaded:
            metrics.LOGINS.labels("shed").inc()
            raise

    async def api_session(self, verified: VerifiedLogin, ctx: RequestContext) -> TokenPair:
        """Finish for the JSON API: a session with an access and a refresh token."""
        return await self._sessions.open_api_session(verified, ctx)

    async def browser_session(
        self, verified: VerifiedLogin, ctx: RequestContext, *, replacing: BrowserSession | None
    ) -> BrowserSignIn:
        """Finish for the pages: a new browser session (a new cookie: the session id is
        rotated at every sign-in), ending the one it replaces."""
        session_id, cookie = await self._sessions.open_browser_session(verified, ctx)
        if replacing is not None:
            await self._sessions.end_browser_session(replacing, ctx)
        return BrowserSignIn(session_id, cookie)

    # ---- flows that outlive a request ----------------------------------------------------

    async def start_flow(self, *, binding: str, ttl_seconds: int, state: dict[str, Any]) -> Flow:
        """A sign-in that must continue somewhere afterwards (``state["continue_to"]``)."""
        return await self._flows.create(
            FlowKind.sign_in,
            binding=binding,
            tenant_id=self._tenant_id(),
            ttl_seconds=ttl_seconds,
            state=state,
        )

    async def flow(self, flow_id: uuid.UUID, *, binding: str) -> Flow:
        """A live sign-in flow of this browser. Raises FlowExpired."""
        return await self._flows.load(flow_id, FlowKind.sign_in, binding=binding)

    async def complete_flow(self, flow: Flow, user_id: uuid.UUID) -> Flow:
        """Record who signed in; the flow is done (used once)."""
        flow.user_id = user_id
        flow.state["signed_in"] = True
        await self._flows.finish(flow)
        return flow
