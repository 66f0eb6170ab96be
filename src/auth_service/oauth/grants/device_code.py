"""The device code grant at the token endpoint (RFC 8628 section 3.4): the device polls
with its device code; the answers until the user approves are section 3.5's errors
(``oauth.rfc8628``). An approved code is redeemed once for the same tokens as an
authorization code: a refresh token with ``offline_access``, an ID token with ``openid``.
"""

from __future__ import annotations

from auth_service.oauth.authorization import check_resources
from auth_service.oauth.clients import Client
from auth_service.oauth.codes import CodeRecord
from auth_service.oauth.errors import InvalidTarget
from auth_service.oauth.grants import GrantContext
from auth_service.oauth.grants.authorization_code import open_grant, user_tokens
from auth_service.oauth.issuance import TokenResponse
from auth_service.oauth.request import EndpointRequest
from auth_service.oauth.rfc8628 import GRANT_TYPE
from auth_service.sessions.grants import PreparedGrant


class DeviceCodeGrant:
    name = GRANT_TYPE

    def __init__(self, context: GrantContext) -> None:
        self._ctx = context

    async def exchange(self, request: EndpointRequest, client: Client) -> TokenResponse:
        device_code = request.params.require("device_code")
        asked = check_resources(request.params.all("resource"), client)

        def opened(record: CodeRecord) -> PreparedGrant:
            return open_grant(self._ctx, record, client, request)

        record, grant = await self._ctx.devices.redeem(device_code, client.pk, opened)
        if asked and not set(asked) <= set(record.request.get("resources") or ()):
            # RFC 8707 section 2.2 as for a code: only resources of the authorization. The
            # code is spent: as with a code, a wrong request gets no second try.
            raise InvalidTarget("resource was not part of the device authorization")
        return await user_tokens(self._ctx, client, record, grant, asked)
