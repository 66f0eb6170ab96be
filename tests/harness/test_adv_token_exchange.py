"""Token exchange (RFC 8693) driven by oauth4webapi 3's generic token endpoint request: the
response passes the library's checks and the token says who acts for whom."""

from __future__ import annotations

from tests.support.harness import Harness
from tests.support.live_server import API_SCOPE, LiveServer
from tests.support.oauth_live import create_client

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
AUDIENCE = "https://reports.example.com"


def test_oauth4webapi_exchanges_a_token_for_an_allowed_audience(
    live_server: LiveServer, harness: Harness
) -> None:
    client = create_client(
        live_server,
        "--grant-type", "client_credentials",
        "--grant-type", GRANT,
        "--scope", API_SCOPE,
        "--token-exchange-audience", AUDIENCE,
    )  # fmt: skip
    result = harness.run(
        "adv-token-exchange",
        base_url=live_server.url,
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        audience=AUDIENCE,
        scope=API_SCOPE,
    )
    assert result["advertised"] is True
    assert (
        result["response"]["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    )
    assert result["response"]["token_type"] == "bearer"
    claims = result["claims"]
    assert claims["aud"] == AUDIENCE
    assert claims["act"] == {"sub": client["client_id"]}
    assert claims["sub"] == client["client_id"]
    assert claims["scope"] == API_SCOPE
    assert result["elsewhere"]["error"] == "invalid_target"
