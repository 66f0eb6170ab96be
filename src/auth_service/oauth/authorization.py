"""The authorization endpoint's protocol (RFC 6749 section 4.1.1, OpenID Connect Core 3.1.2).

Validation happens in a fixed order so that errors never reach an unvalidated URI: the
client and the redirect URI first (a failure there is shown to the user, never redirected,
section 4.1.2.1); everything after is answered at the validated redirect URI. The pending
request is kept server-side as a flow bound to the browser while it signs in and consents.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from auth_service.db.base import utcnow
from auth_service.flows.store import Flow, FlowKind, FlowStore
from auth_service.oauth import rfc7636, rfc8252
from auth_service.oauth.client_metadata import absolute_uri
from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.errors import (
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    RegistrationNotSupported,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from auth_service.oauth.request import Params
from auth_service.oauth.scopes import OPENID, parse_scope

RESPONSE_MODES = ("query", "form_post")
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
MAX_NONCE = 512
MAX_HINT = 320
MAX_AGE_LIMIT = 10 * 365 * 24 * 3600


@dataclass(frozen=True)
class ResponseTarget:
    """Where and how the authorization response goes (a validated redirect URI)."""

    redirect_uri: str
    response_mode: str
    state: str | None


class AuthorizationFailed(Exception):
    """An authorization request refused. With a ``target`` the error goes back to the
    client; without one (unknown client, unregistered redirect URI) it is shown to the user."""

    def __init__(self, error: OAuthError, target: ResponseTarget | None) -> None:
        super().__init__(error.error)
        self.error = error
        self.target = target


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request; JSON-serialisable into its flow."""

    client_id: str
    redirect_uri: str
    redirect_uri_sent: bool
    response_mode: str
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: tuple[str, ...]
    max_age: int | None
    login_hint: str | None
    ui_locales: str | None
    acr_values: tuple[str, ...]
    resources: tuple[str, ...]
    requested_at: str  # ISO 8601: when the request arrived (prompt=login, max_age)

    @property
    def target(self) -> ResponseTarget:
        return ResponseTarget(self.redirect_uri, self.response_mode, self.state)

    @property
    def requested(self) -> datetime:
        return datetime.fromisoformat(self.requested_at)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> AuthorizationRequest:
        tuples = ("scopes", "prompt", "acr_values", "resources")
        values: dict[str, Any] = {k: tuple(v) if k in tuples else v for k, v in data.items()}
        return cls(**values)


def _redirect_uri(params: Params, client: Client) -> tuple[str, bool]:
    """The validated redirect URI and whether it was sent (section 3.1.2.3)."""
    sent = params.get("redirect_uri")
    if sent is None:
        openid = OPENID in (params.get("scope") or "").split(" ")
        if len(client.redirect_uris) == 1 and not openid:
            return client.redirect_uris[0], False
        raise InvalidRequest("redirect_uri is required")
    if not rfc8252.matches(sent, list(client.redirect_uris)):
        raise InvalidRequest("redirect_uri is not registered for this client")
    return sent, True


async def _client_and_target(
    params: Params, clients: ClientService
) -> tuple[Client, ResponseTarget]:
    """The two checks whose failure must not redirect."""
    try:
        client_id = params.require("client_id")
        client = await clients.find(client_id)
        if client is None:
            raise InvalidRequest("unknown client_id")
        redirect_uri, _ = _redirect_uri(params, client)
        state = params.get("state")
    except OAuthError as exc:
        raise AuthorizationFailed(exc, None) from None
    try:
        mode = params.get("response_mode") or "query"
    except OAuthError as exc:
        raise AuthorizationFailed(exc, ResponseTarget(redirect_uri, "query", state)) from None
    if mode not in RESPONSE_MODES:
        raise AuthorizationFailed(
            InvalidRequest("response_mode must be query or form_post"),
            ResponseTarget(redirect_uri, "query", state),
        )
    return client, ResponseTarget(redirect_uri, mode, state)


def _prompt(params: Params) -> tuple[str, ...]:
    prompt = tuple(dict.fromkeys((params.get("prompt") or "").split()))
    unknown = [p for p in prompt if p not in PROMPTS]
    if unknown:
        raise InvalidRequest(f"unsupported prompt value {unknown[0][:32]!r}")
    if "none" in prompt and len(prompt) > 1:
        raise InvalidRequest("prompt=none cannot be combined with other values")
    return prompt


def _max_age(params: Params) -> int | None:
    raw = params.get("max_age")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_AGE_LIMIT:
        raise InvalidRequest("max_age must be a non-negative number of seconds")
    return int(raw)


def check_resources(values: list[str], client: Client) -> tuple[str, ...]:
    """RFC 8707 section 2: absolute URIs without a fragment, each allowed to the client."""
    for value in values:
        if not absolute_uri(value):
            raise InvalidTarget("resource must be an absolute URI without a fragment")
        if value not in client.resources:
            raise InvalidTarget("this client may not ask for that resource")
    return tuple(dict.fromkeys(values))


def _scopes(params: Params, client: Client) -> tuple[str, ...]:
    scopes = parse_scope(params.get("scope"))
    if not scopes:
        raise InvalidScope("scope is required")
    refused = [s for s in scopes if s not in client.scopes]
    if refused:
        raise InvalidScope(f"scope {refused[0]!r} is not allowed for this client")
    return scopes


def _optional(params: Params, name: str, limit: int) -> str | None:
    value = params.get(name)
    if value is not None and len(value) > limit:
        raise InvalidRequest(f"{name} is too long")
    return value


def _request(params: Params, client: Client, target: ResponseTarget) -> AuthorizationRequest:
    for name, error in (
        ("request", RequestNotSupported),
        ("request_uri", RequestUriNotSupported),
        ("registration", RegistrationNotSupported),
    ):
        if params.get(name) is not None:
            raise error(f"the {name} parameter is not supported")
    response_type = params.require("response_type")
    if response_type != "code":
        raise UnsupportedResponseType("only response_type=code is supported")
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient("this client may not use the authorization code grant")
    challenge = rfc7636.check_challenge(
        params.get("code_challenge"), params.get("code_challenge_method")
    )
    _, sent = _redirect_uri(params, client)
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=target.redirect_uri,
        redirect_uri_sent=sent,
        response_mode=target.response_mode,
        scopes=_scopes(params, client),
        state=target.state,
        nonce=_optional(params, "nonce", MAX_NONCE),
        code_challenge=challenge,
        prompt=_prompt(params),
        max_age=_max_age(params),
        login_hint=_optional(params, "login_hint", MAX_HINT),
        ui_locales=_optional(params, "ui_locales", 200),
        acr_values=tuple((_optional(params, "acr_values", 200) or "").split()),
        resources=check_resources(params.all("resource"), client),
        requested_at=utcnow().isoformat(),
    )


async def validate(params: Params, clients: ClientService) -> tuple[AuthorizationRequest, Client]:
    """A validated request and its client, or AuthorizationFailed."""
    client, target = await _client_and_target(params, clients)
    try:
        return _request(params, client, target), client
    except OAuthError as exc:
        raise AuthorizationFailed(exc, target) from None


# ---- the browser step ------------------------------------------------------------------------


@dataclass(frozen=True)
class Authenticated:
    """The signed-in browser session an authorization rests on."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    auth_time: datetime
    acr: str | None
    amr: tuple[str, ...]


def login_needed(request: AuthorizationRequest, session: Authenticated | None) -> bool:
    """Whether the user must (again) sign in: no session; prompt=login or select_account;
    a max_age the last authentication exceeds (OIDC Core 3.1.2.1); or ``acr_values`` the
    session's ``acr`` does not reach (a sign-in is the place to step up; the MFA issue makes
    it able to). A sign-in after the request arrived satisfies all of them: ``acr_values``
    is a voluntary claim, and the ID token says the ``acr`` reached."""
    if session is None:
        return True
    fresh = session.auth_time >= request.requested
    if fresh:
        return False
    if "login" in request.prompt or "select_account" in request.prompt:
        return True
    if request.acr_values and session.acr not in request.acr_values:
        return True
    if request.max_age is not None:
        return utcnow() - session.auth_time > timedelta(seconds=request.max_age)
    return False


def step_up_only(request: AuthorizationRequest, session: Authenticated | None) -> bool:
    """Whether the one reason to sign in again is an ``acr_values`` the session does not
    reach: then the second step alone is asked for (no password), not a whole sign-in."""
    if session is None or not request.acr_values or session.acr in request.acr_values:
        return False
    if "login" in request.prompt or "select_account" in request.prompt:
        return False
    return request.max_age is None or utcnow() - session.auth_time <= timedelta(
        seconds=request.max_age
    )


class PendingAuthorizations:
    """Authorization requests waiting for the browser (flows of kind ``authorization``)."""

    def __init__(self, flows: FlowStore) -> None:
        self._flows = flows

    async def park(
        self, request: AuthorizationRequest, tenant_id: uuid.UUID, *, binding: str, ttl: int
    ) -> uuid.UUID:
        flow = await self._flows.create(
            FlowKind.authorization,
            binding=binding,
            tenant_id=tenant_id,
            ttl_seconds=ttl,
            state={"request": request.state_dict()},
        )
        return flow.id

    async def load(self, flow_id: uuid.UUID, *, binding: str) -> tuple[Flow, AuthorizationRequest]:
        """Raises FlowExpired (unknown, expired, done, or another browser's)."""
        flow = await self._flows.load(flow_id, FlowKind.authorization, binding=binding)
        return flow, AuthorizationRequest.from_state(flow.state["request"])

    async def finish(self, flow: Flow) -> None:
        """Used once: a second answer to the same request raises FlowExpired."""
        await self._flows.finish(flow)
