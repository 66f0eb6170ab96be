"""Federated sign-in failures over HTTP, on SQLite and PostgreSQL, against a real upstream
provider (oidc-provider 9, tests/harness/upstream-idp.mjs) where one is needed: each ends on
a page that says what happened with a reference id, is audited, and is never a 500."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.federation.connectors import ConnectorSpec, ConnectorType
from tests.support.api import Api
from tests.support.pages import submit
from tests.support.upstream_idp import UpstreamIdp, upstream_idp

CTX = RequestContext(request_id="test")
CONNECTOR = "up"


@pytest.fixture
def idp(api: Api) -> Iterator[UpstreamIdp]:
    with upstream_idp([api.services.federation.redirect_uri(CONNECTOR)]) as upstream:
        yield upstream


async def _connector(api: Api, issuer: str, connector_id: str = CONNECTOR) -> None:
    spec = ConnectorSpec(
        id=connector_id,
        name="Upstream Test",
        type=ConnectorType.oidc,
        client_id="auth-service-rp",
        issuer=issuer,
        client_secret="upstream-test-client-credential",
    )
    await api.services.federation.connectors.create(spec, CTX)


async def _begin(api: Api, connector_id: str = CONNECTOR) -> httpx.Response:
    return await submit(api.client, "/login", f"/login/federated/{connector_id}", {})


async def _failures(api: Api) -> list[str]:
    found, _ = await api.services.audit.query(event_type=events.FEDERATION_FAILED)
    return [str(e.details["reason"]) for e in found]


def _assert_failure_page(r: httpx.Response, status: int, text: str) -> None:
    assert r.status_code == status, r.text[:400]
    assert r.headers["content-type"].startswith("text/html")
    assert text in r.text
    assert "Reference:" in r.text


async def test_the_button_follows_the_connector_without_a_restart(api: Api) -> None:
    await _connector(api, "https://idp.example")
    assert "Continue with Upstream Test" in (await api.client.get("/login")).text
    await api.services.federation.connectors.update(CONNECTOR, CTX, enabled=False)
    assert "Continue with Upstream Test" not in (await api.client.get("/login")).text
    r = await _begin_without_button(api)
    _assert_failure_page(r, 404, "not available")


async def _begin_without_button(api: Api) -> httpx.Response:
    page = await api.client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return await api.client.post(
        f"/login/federated/{CONNECTOR}",
        data={"csrf_token": token},
        headers={"origin": "http://testserver"},
    )


async def test_begin_sends_code_pkce_state_and_nonce(api: Api, idp: UpstreamIdp) -> None:
    await _connector(api, idp.issuer)
    r = await _begin(api)
    assert r.status_code == 303
    target = urlsplit(r.headers["location"])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert f"{target.scheme}://{target.netloc}" == idp.issuer
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == api.services.federation.redirect_uri(CONNECTOR)
    assert len(query["nonce"]) >= 40
    assert "." in query["state"]


async def test_a_forged_state_is_refused(api: Api) -> None:
    await _connector(api, "https://idp.example")
    r = await api.client.get(
        f"/login/federated/{CONNECTOR}/callback", params={"code": "c", "state": "forged.x"}
    )
    _assert_failure_page(r, 400, "did not start in this browser")
    assert await _failures(api) == ["federation-state-invalid:unknown"]


async def test_the_state_of_another_browser_is_refused(api: Api, idp: UpstreamIdp) -> None:
    await _connector(api, idp.issuer)
    state = parse_qs(urlsplit((await _begin(api)).headers["location"]).query)["state"][0]
    api.client.cookies.clear()  # another browser: no anti-forgery cookie of the first
    r = await api.client.get(
        f"/login/federated/{CONNECTOR}/callback", params={"code": "c", "state": state}
    )
    _assert_failure_page(r, 400, "did not start in this browser")


async def test_access_denied_upstream_ends_on_a_page_and_spends_the_state(
    api: Api, idp: UpstreamIdp
) -> None:
    await _connector(api, idp.issuer)
    state = parse_qs(urlsplit((await _begin(api)).headers["location"]).query)["state"][0]
    params = {"error": "access_denied", "state": state}
    r = await api.client.get(f"/login/federated/{CONNECTOR}/callback", params=params)
    _assert_failure_page(r, 400, "was cancelled")
    again = await api.client.get(f"/login/federated/{CONNECTOR}/callback", params=params)
    _assert_failure_page(again, 400, "did not start in this browser")
    assert sorted(await _failures(api)) == [
        "federation-cancelled:access_denied",
        "federation-state-invalid:unknown",
    ]


async def test_a_wrong_code_is_refused_by_the_real_token_endpoint(
    api: Api, idp: UpstreamIdp
) -> None:
    await _connector(api, idp.issuer)
    state = parse_qs(urlsplit((await _begin(api)).headers["location"]).query)["state"][0]
    r = await api.client.get(
        f"/login/federated/{CONNECTOR}/callback", params={"code": "not-a-code", "state": state}
    )
    _assert_failure_page(r, 401, "could not be verified")
    assert await _failures(api) == ["federation-token-invalid:token_request"]


async def test_an_upstream_that_is_down_ends_on_a_page(api: Api) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await _connector(api, f"http://127.0.0.1:{port}")
    r = await _begin(api)
    _assert_failure_page(r, 502, "did not answer in time")
    assert await _failures(api) == ["upstream-unavailable"]


async def test_a_discovery_document_of_another_issuer_is_refused(
    api: Api, idp: UpstreamIdp
) -> None:
    # Same server, another name: the document says 127.0.0.1, we configured localhost.
    await _connector(api, idp.issuer.replace("127.0.0.1", "localhost"))
    r = await _begin(api)
    _assert_failure_page(r, 422, "not set up correctly")
    assert await _failures(api) == [
        "invalid-connector:the provider's discovery document names another issuer"
    ]


async def test_a_response_naming_another_issuer_is_refused(api: Api, idp: UpstreamIdp) -> None:
    # RFC 9207: the mix-up defence; nothing is exchanged with the provider named.
    await _connector(api, idp.issuer)
    state = parse_qs(urlsplit((await _begin(api)).headers["location"]).query)["state"][0]
    params = {"code": "c", "state": state, "iss": "https://evil.example"}
    r = await api.client.get(f"/login/federated/{CONNECTOR}/callback", params=params)
    _assert_failure_page(r, 401, "could not be verified")
    assert await _failures(api) == ["federation-token-invalid:iss_response"]


async def test_an_error_code_is_audited_as_a_plain_slug(api: Api, idp: UpstreamIdp) -> None:
    await _connector(api, idp.issuer)
    state = parse_qs(urlsplit((await _begin(api)).headers["location"]).query)["state"][0]
    params = {"error": "Access_Denied\u2028<script>", "state": state}
    r = await api.client.get(f"/login/federated/{CONNECTOR}/callback", params=params)
    _assert_failure_page(r, 400, "was cancelled")
    assert "<script>" not in r.text
    assert await _failures(api) == ["federation-cancelled:access_deniedscript"]


@pytest.mark.parametrize(
    "settings_overrides", [{"rate_limits": {"login_per_ip": "2/minute"}}], indirect=True
)
async def test_starting_sign_ins_counts_toward_the_login_limit(api: Api, idp: UpstreamIdp) -> None:
    await _connector(api, idp.issuer)
    assert (await _begin(api)).status_code == 303
    assert (await _begin(api)).status_code == 303
    r = await _begin(api)
    _assert_failure_page(r, 429, "Too many attempts")
