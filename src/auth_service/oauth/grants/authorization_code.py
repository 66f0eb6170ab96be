"""The authorization code grant at the token endpoint (RFC 6749 section 4.1.3).

Checks, in order: the code is unspent, unexpired and this client's; ``redirect_uri`` is
identical to the authorization request's when that request sent one (and never different);
the PKCE verifier matches (RFC 7636 section 4.6); requested resources are among the code's
(RFC 8707 section 2.2). The code is spent whatever the outcome. A replayed code revokes the
grant it issued. ``offline_access`` (granted, and the client may refresh) gets a refresh
token; ``openid`` an ID token.
"""

from __future__ import annotations

import uuid

from auth_service.audit import events
from auth_service.oauth import rfc7636
from auth_service.oauth.authorization import check_resources
from auth_service.oauth.clients import Client
from auth_service.oauth.codes import CodeRecord, CodeReplayed
from auth_service.oauth.errors import InvalidGrant, InvalidTarget
from auth_service.oauth.grants import GrantContext
from auth_service.oauth.issuance import TokenResponse
from auth_service.oauth.request import EndpointRequest
from auth_service.oauth.rfc9068 import UserFacts
from auth_service.oauth.scopes import OFFLINE_ACCESS
from auth_service.sessions.errors import SessionNotFound
from auth_service.sessions.grants import GrantRequest, GrantSessions, PreparedGrant


class AuthorizationCodeGrant:
    name = "authorization_code"

    def __init__(self, context: GrantContext) -> None:
        self._ctx = context

    async def exchange(self, request: EndpointRequest, client: Client) -> TokenResponse:
        params = request.params
        code = params.require("code")
        redirect_uri = params.get("redirect_uri")
        verifier = params.get("code_verifier")
        asked = check_resources(params.all("resource"), client)

        def check(record: CodeRecord) -> None:
            _check(record.request, redirect_uri, verifier, asked)

        def opened(record: CodeRecord) -> PreparedGrant:
            return open_grant(self._ctx, record, client, request)

        try:
            record, grant = await self._ctx.codes.redeem(code, client.pk, check, opened)
        except CodeReplayed as exc:
            await self._replayed(exc, client, request)
            raise
        return await user_tokens(self._ctx, client, record, grant, asked)

    async def _replayed(self, exc: CodeReplayed, client: Client, request: EndpointRequest) -> None:
        owner = None
        if exc.grant_id is not None:
            owner = await self._ctx.revoker.revoke(exc.grant_id, reason="code_replay")
        await self._ctx.audit.record(
            events.OAUTH_CODE_REPLAYED,
            request.context,
            outcome="denied",
            subject=owner,
            details={
                "client_id": client.client_id,
                "grant_id": str(exc.grant_id) if exc.grant_id else None,
            },
        )


def _check(
    wanted: dict[str, object],
    redirect_uri: str | None,
    verifier: str | None,
    asked: tuple[str, ...],
) -> None:
    """The token request matches the authorization request of the code (section 4.1.3)."""
    if (wanted["redirect_uri_sent"] or redirect_uri is not None) and (
        redirect_uri != wanted["redirect_uri"]
    ):
        raise InvalidGrant("redirect_uri does not match the authorization request")
    challenge = wanted.get("code_challenge")
    rfc7636.verify(verifier, challenge if isinstance(challenge, str) else None)
    resources = wanted.get("resources") or ()
    if not set(asked) <= set(resources if isinstance(resources, list) else ()):
        raise InvalidTarget("resource was not part of the authorization request")


def _uuid(value: object) -> uuid.UUID | None:
    return uuid.UUID(value) if isinstance(value, str) else None


def open_grant(
    ctx: GrantContext, record: CodeRecord, client: Client, request: EndpointRequest
) -> PreparedGrant:
    """The grant a code (or an approved device code) is exchanged for: a refresh token only
    with offline_access granted and the refresh_token grant allowed."""
    wanted = record.request
    offline = OFFLINE_ACCESS in wanted["scope"].split()
    return GrantSessions.prepare(
        GrantRequest(
            tenant_id=record.tenant_id,
            user_id=record.user_id,
            client_id=client.client_id,
            scope=wanted["scope"],
            resources=tuple(wanted.get("resources", ())),
            auth_time=record.auth_time,
            amr=tuple(wanted.get("amr", ())),
            acr=wanted.get("acr"),
            browser_session_id=_uuid(wanted.get("sid")),
            lifetime_seconds=ctx.settings().oauth.refresh_token_ttl_seconds,
            ip=request.context.ip,
            user_agent=request.context.user_agent,
        ),
        refresh=offline and "refresh_token" in client.grant_types,
    )


async def user_tokens(
    ctx: GrantContext,
    client: Client,
    record: CodeRecord,
    grant: PreparedGrant,
    asked: tuple[str, ...],
) -> TokenResponse:
    """The tokens of a grant just opened for ``record``'s user, who must still be able to
    sign in (they may have been disabled since the code was issued)."""
    try:
        await ctx.sessions.active_identity(grant.id, record.user_id)
    except SessionNotFound:
        raise InvalidGrant("the user can no longer sign in") from None
    wanted = record.request
    user = UserFacts(
        record.user_id,
        record.auth_time,
        wanted.get("acr"),
        tuple(wanted.get("amr", ())),
        grant.id,
    )
    return await ctx.issuer.for_user(
        client,
        scope=wanted["scope"],
        resources=asked or tuple(wanted.get("resources", ())),
        user=user,
        lifetimes=ctx.lifetimes(),
        refresh_token=grant.refresh_token,
        nonce=wanted.get("nonce"),
        browser_session_id=_uuid(wanted.get("sid")),
    )
