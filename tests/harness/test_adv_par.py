"""Pushed authorization requests (RFC 9126) with openid-client's
``buildAuthorizationUrlWithPAR``: the browser carries only client_id and request_uri."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.support.harness import Harness
from tests.support.live_server import LiveServer
from tests.support.oauth_live import REDIRECT, create_client, harness_code_flow


def test_openid_client_signs_in_with_a_pushed_request_of_a_par_required_client(
    live_server: LiveServer, harness: Harness
) -> None:
    client = create_client(live_server, "--require-par")
    assert client["require_pushed_authorization_requests"] is True
    user = live_server.new_user()
    common = {
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "redirect_uri": REDIRECT,
    }
    started, done = harness_code_flow(harness, live_server, "adv-par", user, **common)
    assert started["parEndpoint"] == live_server.url + "/oauth2/par"
    query = parse_qs(urlsplit(started["url"]).query)
    assert set(query) == {"client_id", "request_uri"}
    assert query["request_uri"][0].startswith("urn:ietf:params:oauth:request_uri:")
    assert done["sub"] == user["user"]["id"]
    assert done["userinfo"]["email"] == user["email"]

    # The same request_uri again: refused on the page, nothing sent to the client.
    again = authorize_in_browser_refused(live_server, started["url"])
    assert "invalid_request_uri" in again


def authorize_in_browser_refused(live: LiveServer, url: str) -> str:
    with live.client() as http:
        response = http.get(url)
    assert response.status_code == 400, response.status_code
    return response.text
