"""The device authorization grant (RFC 8628) on SQLite and PostgreSQL: the device asks for
codes, the user enters the code on /device, signs in and answers; the device's polls get
every section 3.5 answer, an approved code is redeemed once, and code entry is rate limited.

Time is moved, never slept through: the device authorizations' ``clock`` is replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from auth_service.db.base import utcnow
from tests.support import oauth
from tests.support.api import Api
from tests.support.pages import ORIGIN, form

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ALPHABET = set("BCDFGHJKLMNPQRSTVWXZ")


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(api: Api) -> Iterator[Clock]:
    devices = api.services.oauth.devices
    moved = Clock()
    devices.clock = moved
    return moved


async def _device_client(api: Api, **extra: Any) -> oauth.Registered:
    return await oauth.client(
        api,
        client_type=extra.pop("client_type", "public"),
        redirect_uris=(),
        grant_types=extra.pop("grant_types", (GRANT, "refresh_token")),
        first_party=False,
        **extra,
    )


async def _start(api: Api, registered: oauth.Registered, **data: str) -> httpx.Response:
    headers = registered.basic if registered.secret else {}
    if not registered.secret:
        data.setdefault("client_id", registered.client_id)
    return await api.client.post("/oauth2/device_authorization", data=data, headers=headers)


async def _codes(api: Api, registered: oauth.Registered, scope: str = "openid profile") -> Any:
    r = await _start(api, registered, scope=scope)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return r.json()


async def _poll(api: Api, registered: oauth.Registered, device_code: str) -> httpx.Response:
    return await oauth.token(api, registered, grant_type=GRANT, device_code=device_code)


def _error(r: httpx.Response) -> str:
    assert r.status_code == 400, (r.status_code, r.text)
    error: str = r.json()["error"]
    return error


async def _enter(api: Api, user_code: str) -> httpx.Response:
    page = await api.client.get("/device")
    assert page.status_code == 200
    fields = form(page.text, "/device")
    fields["user_code"] = user_code
    return await api.client.post("/device", data=fields, headers={"origin": ORIGIN})


async def _answer(api: Api, user_code: str, email: str, decision: str) -> httpx.Response:
    """Enter the code, sign in, answer on the consent page: the last page."""
    r = await oauth.follow(api, await _enter(api, user_code), email=email)
    assert r.status_code == 200, r.text
    assert 'action="/device/consent"' in r.text
    fields = form(r.text, "/device/consent")
    fields["decision"] = decision
    return await api.client.post("/device/consent", data=fields, headers={"origin": ORIGIN})


async def test_discovery_advertises_the_endpoint_and_the_grant(api: Api) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        doc = (await api.client.get(path)).json()
        assert doc["device_authorization_endpoint"] == (
            doc["issuer"] + "/oauth2/device_authorization"
        )
        assert GRANT in doc["grant_types_supported"]


async def test_a_device_is_connected_and_its_code_redeemed_once(api: Api, clock: Clock) -> None:
    registered = await _device_client(api)
    email = await oauth.new_user(api)
    codes = await _codes(api, registered, scope="openid profile offline_access")
    user_code = codes["user_code"]
    assert len(user_code) == 9
    assert user_code[4] == "-"
    assert set(user_code.replace("-", "")) <= ALPHABET
    assert codes["verification_uri"].endswith("/device")
    assert (
        codes["verification_uri_complete"] == f"{codes['verification_uri']}?user_code={user_code}"
    )
    assert codes["expires_in"] == 600
    assert codes["interval"] == 5
    assert _error(await _poll(api, registered, codes["device_code"])) == "authorization_pending"

    # Typed in lower case without the dash: the same code.
    done = await _answer(api, user_code.replace("-", "").lower(), email, "allow")
    assert done.status_code == 200
    assert "Device connected" in done.text

    clock.advance(5)
    r = await _poll(api, registered, codes["device_code"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"access_token", "id_token", "refresh_token"} <= set(body)
    assert body["scope"] == "openid profile offline_access"
    info = await api.client.get(
        "/oauth2/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert info.status_code == 200, info.text

    clock.advance(5)
    again = await _poll(api, registered, codes["device_code"])
    assert _error(again) == "invalid_grant"


async def test_polling_faster_than_the_interval_is_slow_down_and_the_interval_grows(
    api: Api, clock: Clock
) -> None:
    registered = await _device_client(api)
    device_code = (await _codes(api, registered))["device_code"]
    assert _error(await _poll(api, registered, device_code)) == "authorization_pending"
    clock.advance(4)
    assert _error(await _poll(api, registered, device_code)) == "slow_down"
    # The interval is now 10 seconds: 6 later is still too soon, 10 later is not.
    clock.advance(6)
    assert _error(await _poll(api, registered, device_code)) == "slow_down"
    clock.advance(15)
    assert _error(await _poll(api, registered, device_code)) == "authorization_pending"


async def test_an_expired_device_code_is_expired_token(api: Api, clock: Clock) -> None:
    registered = await _device_client(api)
    codes = await _codes(api, registered)
    clock.advance(codes["expires_in"])
    assert _error(await _poll(api, registered, codes["device_code"])) == "expired_token"
    # Its user code is gone with it, with the answer of any wrong code.
    r = await _enter(api, codes["user_code"])
    assert r.status_code == 400
    assert "not valid or has expired" in r.text


async def test_a_denied_request_is_access_denied(api: Api, clock: Clock) -> None:
    registered = await _device_client(api)
    email = await oauth.new_user(api)
    codes = await _codes(api, registered)
    done = await _answer(api, codes["user_code"], email, "deny")
    assert "Request denied" in done.text
    clock.advance(5)
    assert _error(await _poll(api, registered, codes["device_code"])) == "access_denied"


async def test_another_clients_device_code_is_invalid_grant(api: Api) -> None:
    owner = await _device_client(api)
    other = await _device_client(api, name="Other device")
    codes = await _codes(api, owner)
    assert _error(await _poll(api, other, codes["device_code"])) == "invalid_grant"
    assert _error(await _poll(api, owner, codes["device_code"])) == "authorization_pending"


async def test_a_client_without_the_grant_is_refused(api: Api) -> None:
    registered = await oauth.client(api)  # authorization_code and refresh_token only
    r = await _start(api, registered, scope="openid")
    assert _error(r) == "unauthorized_client"
    polled = await _poll(api, registered, "anything")
    assert _error(polled) == "unauthorized_client"


async def test_a_confidential_client_authenticates_at_the_device_endpoint(api: Api) -> None:
    registered = await _device_client(api, client_type="confidential")
    r = await api.client.post(
        "/oauth2/device_authorization", data={"client_id": registered.client_id}
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert "user_code" in (await _codes(api, registered))


async def test_the_complete_uri_prefills_the_code(api: Api) -> None:
    r = await api.client.get("/device", params={"user_code": "BCDF-GHJK"})
    assert r.status_code == 200
    assert 'value="BCDF-GHJK"' in r.text
    assert ">Code</label>" in r.text
    assert ">Continue</button>" in r.text


@pytest.mark.parametrize(
    "settings_overrides",
    [{"rate_limits": {"device_code_per_session": "3/minute"}}],
    indirect=True,
)
async def test_wrong_codes_are_answered_alike_and_rate_limited(api: Api) -> None:
    registered = await _device_client(api)
    await _codes(api, registered)
    answers = set()
    for typed in ("BCDF-GHJK", "not a code"):
        r = await _enter(api, typed)
        assert r.status_code == 400
        answers.add(r.text.split('role="alert">', 1)[1].split("<", 1)[0])
    assert len(answers) == 1
    r = await _enter(api, "ZZZZ-ZZZZ")
    assert r.status_code == 400
    limited = await _enter(api, "XXXX-XXXX")
    assert limited.status_code == 429


async def test_the_admin_api_registers_a_device_client_by_the_standard_name(api: Api) -> None:
    from auth_service.audit.context import RequestContext

    email = "device-admin@example.com"
    await api.services.accounts.registration.create_user(
        email, oauth.PASSWORD, admin=True, ctx=RequestContext()
    )
    headers = Api.bearer((await api.login(email, oauth.PASSWORD)).json()["access_token"])
    body = {"name": "TV", "type": "public", "grant_types": [GRANT], "scope": "openid"}
    r = await api.client.post("/v1/admin/clients", json=body, headers=headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["grant_types"] == [GRANT]
    assert created["redirect_uris"] == []
    registered = oauth.Registered(created["client_id"], None)
    assert "user_code" in await _codes(api, registered, scope="openid")
