"""Sign-in: one engine, two faces.

The JSON API (``POST /v1/auth/login``) and the hosted page (``POST /login``) run the same
steps: check the credentials (``Credentials.verify_login``: limits, lockout, constant work),
then, when the account has a second factor (or a role that requires one), a second step, then
open a session — an API session with tokens, or a browser session with a cookie. What must
survive between two requests of a sign-in (where to continue afterwards: a same-origin
``return_to``, or a pending OAuth2 authorization; the pending second step) is a ``Flow``
bound to the browser or API client; a one-step sign-in writes no flow at all.

The second step (``SecondStep``, state ``step``):
- ``mfa``: the password was right; a TOTP code, a recovery code or a passkey finishes it;
- ``enrol``: a role requires a factor and the grace period is over: confirming a new
  authenticator app finishes it;
- ``passkey``: a usernameless passkey sign-in waiting for its assertion.
State keeps ``amr`` (the methods done so far), ``attempts`` (wrong codes), ``challenge`` (a
WebAuthn challenge) and whatever the flow carried before (``continue_to``...). A signed-in
browser asked for a higher ``acr`` (state ``require_acr: "aal2"``, e.g. OIDC ``acr_values``)
enters the same ``mfa`` step with the methods of its session (``step_up``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auth_service.accounts.assurance import Assurance, AuthMethod
from auth_service.accounts.credentials import Credentials, VerifiedLogin
from auth_service.accounts.identity import Identity, IdentityReader
from auth_service.audit.context import RequestContext
from auth_service.config.settings import Settings
from auth_service.db.base import utcnow
from auth_service.flows.errors import FlowExpired, MfaRequired
from auth_service.flows.store import Flow, FlowKind, FlowStore
from auth_service.mfa.ceremonies import b64url, unb64url
from auth_service.mfa.errors import InvalidFactor
from auth_service.mfa.policy import Factor, FactorSummary, Requirement, assurance, requirement
from auth_service.mfa.service import MfaService
from auth_service.observability import metrics
from auth_service.security.passwords import HashingOverloaded
from auth_service.security.random import new_token
from auth_service.security.ratelimit import RateLimited
from auth_service.sessions.service import BrowserSession, SessionService, TokenPair

API_BINDING = "api:"  # an API flow is bound to the secret half of its flow_id
STEP_MFA = "mfa"
STEP_ENROL = "enrol"
STEP_PASSKEY = "passkey"


@dataclass(frozen=True)
class BrowserSignIn:
    """A browser signed in: its new session and the cookie value that names it."""

    session_id: uuid.UUID
    cookie: str


@dataclass(frozen=True)
class SecondStep:
    """A sign-in waiting for its second step: the flow, and what it accepts."""

    flow: Flow
    methods: list[Factor]
    enrolment: bool


def api_flow_ref(raw: str) -> tuple[uuid.UUID, str]:
    """``<uuid>.<secret>`` → the flow id and its binding. Raises FlowExpired."""
    flow_id, _, secret = raw.partition(".")
    try:
        parsed = uuid.UUID(flow_id)
    except ValueError:
        raise FlowExpired from None
    if not 20 <= len(secret) <= 64:
        raise FlowExpired
    return parsed, API_BINDING + secret


class SignIn:
    def __init__(
        self,
        credentials: Credentials,
        identities: IdentityReader,
        sessions: SessionService,
        flows: FlowStore,
        mfa: MfaService,
        settings: Callable[[], Settings],
        tenant_id: Callable[[], uuid.UUID],
    ) -> None:
        self._credentials = credentials
        self._identities = identities
        self._sessions = sessions
        self._flows = flows
        self._tenant_id = tenant_id
        self._settings = settings
        self.mfa = mfa

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

    async def api_session(
        self,
        verified: VerifiedLogin,
        ctx: RequestContext,
        *,
        totp_code: str | None = None,
        dpop_jkt: str | None = None,
    ) -> TokenPair:
        """Finish for the JSON API: a session with an access and a refresh token (bound to
        ``dpop_jkt``, a proven DPoP key, if given) — or, when a second step is due,
        MfaRequired with a flow only this client can continue.

        A client that already holds the authenticator app's code may send it with the
        password (``totp_code``): when the second step due is a TOTP code, it is checked
        here (limits and lockout as at ``/v1/auth/login/mfa``) and no flow is written — one
        request instead of two. A wrong code raises InvalidFactor; a code the account cannot
        use (no authenticator app, enrolment due) is ignored and MfaRequired answers."""
        due = await self._due(verified)
        if due is None:
            return await self._sessions.open_api_session(verified, ctx, dpop_jkt=dpop_jkt)
        methods, enrol, summary = due
        if totp_code is not None and not enrol and Factor.totp in methods:
            identity = verified.identity
            added = await self.mfa.verify_code(
                identity,
                Factor.totp,
                totp_code,
                ctx,
                with_password=True,
                totp_sealed=summary.totp_sealed,
            )
            amr, acr = assurance([*(m.value for m in verified.amr), *added])
            resumed = await self._credentials.resume(
                identity.id, amr=amr, acr=acr, identity=identity
            )
            return await self._sessions.open_api_session(resumed, ctx, dpop_jkt=dpop_jkt)
        secret = new_token()
        flow = await self._keep(
            None, API_BINDING + secret, verified.identity.id, self._step_state(verified, enrol)
        )
        raise await self.mfa_required(SecondStep(flow, methods, enrol), secret)

    async def mfa_required(self, step: SecondStep, secret: str) -> MfaRequired:
        """The API's answer to a pending second step (with passkey options when it takes
        one: their challenge is kept in the flow)."""
        options = None
        if Factor.webauthn in step.methods:
            options = await self.passkey_challenge(step.flow)
        ttl = self._settings().mfa.flow_ttl_seconds
        return MfaRequired(
            f"{step.flow.id}.{secret}",
            [m.value for m in step.methods],
            ttl,
            enrolment=step.enrolment,
            webauthn=options,
        )

    async def browser_session(
        self, verified: VerifiedLogin, ctx: RequestContext, *, replacing: BrowserSession | None
    ) -> BrowserSignIn:
        """Finish for the pages: a new browser session (a new cookie: the session id is
        rotated at every sign-in), ending the one it replaces."""
        session_id, cookie = await self._sessions.open_browser_session(verified, ctx)
        if replacing is not None:
            await self._sessions.end_browser_session(replacing, ctx)
        return BrowserSignIn(session_id, cookie)

    # ---- the second step -------------------------------------------------------------------

    async def second_step_due(
        self,
        verified: VerifiedLogin,
        *,
        binding: str,
        pending: Flow | None = None,
        state: dict[str, Any] | None = None,
    ) -> SecondStep | None:
        """After the password: None when the sign-in may finish now; otherwise the pending
        second step, stored in ``pending`` (a flow of this browser that continues elsewhere
        afterwards) or in a new flow bound to ``binding``."""
        due = await self._due(verified)
        if due is None:
            return None
        methods, enrol, _ = due
        step_state = self._step_state(verified, enrol)
        flow = await self._keep(
            pending, binding, verified.identity.id, {**(state or {}), **step_state}
        )
        return SecondStep(flow, methods, enrol)

    async def _due(
        self, verified: VerifiedLogin
    ) -> tuple[list[Factor], bool, FactorSummary] | None:
        """After the password: None when the sign-in may finish now, else the factors the
        second step accepts, whether it is an enrolment, and the user's factors as read.
        Starts a grace period when one begins."""
        settings = self._settings()
        identity = verified.identity
        summary = await self.mfa.summary(identity.id)
        due = requirement(identity, summary, settings.mfa, utcnow())
        if due is Requirement.grace:
            await self.mfa.start_grace(identity)
        if due in (Requirement.none, Requirement.grace):
            return None
        enrol = due is Requirement.enrol
        methods = (
            [Factor.totp] if enrol else summary.methods(passkeys_enabled=settings.mfa.passkeys)
        )
        if not methods:
            return None  # only passkeys, and the operator switched them off
        return methods, enrol, summary

    @staticmethod
    def _step_state(verified: VerifiedLogin, enrol: bool) -> dict[str, Any]:
        return {
            "step": STEP_ENROL if enrol else STEP_MFA,
            "amr": [m.value for m in verified.amr],
            "attempts": 0,
        }

    async def step_up(self, session: BrowserSession, flow: Flow) -> SecondStep | None:
        """A signed-in browser asked for aal2 (``require_acr``): the second step with the
        methods its session already has, if the user has a factor to add; else None."""
        summary = await self.mfa.summary(session.identity.id)
        if not summary.has_second_factor:
            return None
        state = {"step": STEP_MFA, "amr": list(session.amr) or ["pwd"], "attempts": 0}
        flow.state.update(state)
        flow.user_id = session.identity.id
        await self._flows.save(flow)
        methods = summary.methods(passkeys_enabled=self._settings().mfa.passkeys)
        return SecondStep(flow, methods, False)

    async def _keep(
        self, pending: Flow | None, binding: str, user_id: uuid.UUID, state: dict[str, Any]
    ) -> Flow:
        if pending is not None:
            pending.state.update(state)
            pending.user_id = user_id
            await self._flows.save(pending)
            return pending
        return await self._flows.create(
            FlowKind.sign_in,
            binding=binding,
            tenant_id=self._tenant_id(),
            ttl_seconds=self._settings().mfa.flow_ttl_seconds,
            state=state,
            user_id=user_id,
        )

    async def pending_step(self, flow_id: uuid.UUID, *, binding: str) -> tuple[Flow, Identity]:
        """The live second step of this browser or client, and its user. Raises FlowExpired."""
        flow = await self.flow(flow_id, binding=binding)
        if flow.state.get("step") not in (STEP_MFA, STEP_ENROL) or flow.user_id is None:
            raise FlowExpired
        identity = await self._identities.identity(flow.user_id)
        if identity is None or not identity.active:
            raise FlowExpired
        return flow, identity

    async def passkey_challenge(self, flow: Flow) -> dict[str, Any]:
        """WebAuthn options for the flow's user (or, without one, usernameless); the challenge
        is kept in the flow for the assertion."""
        options, challenge = await self.mfa.passkeys.authentication_options(flow.user_id)
        flow.state["challenge"] = b64url(challenge)
        await self._flows.save(flow)
        return options

    async def finish_second_step(
        self,
        flow: Flow,
        identity: Identity,
        ctx: RequestContext,
        *,
        factor: Factor,
        code: str = "",
        credential: Any = None,
    ) -> VerifiedLogin:
        """Check the factor, spend the flow (once), and return the verified login to open a
        session with. A wrong factor counts toward the flow's attempts (the flow ends at
        ``mfa.max_attempts``) and the account's lockout. Raises InvalidFactor, RateLimited,
        AccountLocked, FlowExpired, AccountDisabled."""
        try:
            added = await self._check_factor(flow, identity, ctx, factor, code, credential)
        except InvalidFactor:
            flow.state["attempts"] = int(flow.state.get("attempts", 0)) + 1
            if flow.state["attempts"] >= self._settings().mfa.max_attempts:
                await self._flows.finish(flow)
            else:
                await self._flows.save(flow)
            raise
        flow.state["signed_in"] = True
        await self._flows.finish(flow)  # FlowExpired for the loser of a race: used once
        amr, acr = assurance([*flow.state.get("amr", []), *added])
        # The user was read fresh by pending_step in this request.
        return await self._credentials.resume(identity.id, amr=amr, acr=acr, identity=identity)

    async def _check_factor(
        self,
        flow: Flow,
        identity: Identity,
        ctx: RequestContext,
        factor: Factor,
        code: str,
        credential: Any,
    ) -> tuple[AuthMethod, ...]:
        if flow.state.get("step") == STEP_ENROL:
            if factor is not Factor.totp:
                raise InvalidFactor
            await self.mfa.factors.confirm_totp(identity, code, ctx)
            return (AuthMethod.otp,)
        if factor is Factor.webauthn:
            # Kept for a retry within the flow's attempts; the flow ends at the first success.
            challenge = flow.state.get("challenge")
            if not isinstance(challenge, str) or credential is None:
                raise InvalidFactor
            return await self.mfa.verify_passkey(identity, credential, unb64url(challenge), ctx)
        return await self.mfa.verify_code(identity, factor, code, ctx)

    # ---- passwordless ------------------------------------------------------------------------

    async def start_passkey(
        self, ctx: RequestContext, *, binding: str, state: dict[str, Any] | None = None
    ) -> tuple[Flow, dict[str, Any]]:
        """A usernameless passkey sign-in: a flow holding the challenge, and the options.
        Anyone may ask, so it counts toward ``ip.login`` (each one writes a flow row).
        Raises RateLimited or FactorDisabled."""
        await self.mfa.throttle(ctx)
        flow = await self._flows.create(
            FlowKind.sign_in,
            binding=binding,
            tenant_id=self._tenant_id(),
            ttl_seconds=self._settings().mfa.flow_ttl_seconds,
            state={**(state or {}), "step": STEP_PASSKEY},
        )
        return flow, await self.passkey_challenge(flow)

    async def finish_passkey(
        self, flow_id: uuid.UUID, credential: Any, ctx: RequestContext, *, binding: str
    ) -> tuple[Flow, VerifiedLogin]:
        """Check the assertion of a usernameless sign-in (user verification required) and
        spend its flow. Raises FlowExpired, RateLimited, InvalidFactor, AccountDisabled."""
        flow = await self.flow(flow_id, binding=binding)
        challenge = flow.state.get("challenge")
        if flow.state.get("step") != STEP_PASSKEY or not isinstance(challenge, str):
            raise FlowExpired
        # One assertion per challenge, right or wrong (W3C WebAuthn section 13.4.3).
        await self._flows.finish(flow)
        use, methods = await self.mfa.verify_passwordless(credential, unb64url(challenge), ctx)
        amr, acr = assurance(methods)
        verified = await self._credentials.resume(use.user_id, amr=amr, acr=acr)
        flow.user_id = use.user_id
        return flow, verified

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


__all__ = ["Assurance", "BrowserSignIn", "SecondStep", "SignIn", "api_flow_ref"]
