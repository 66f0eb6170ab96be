"""DPoP (RFC 9449) with openid-client's ``getDPoPHandle``: a public client's tokens are bound
to its key, userinfo and refresh work with it, and the server refuses the bound token as
Bearer, another key's proof, a replayed proof, a proof for another URL and a stale one;
with ``oauth.dpop_nonce`` the library's nonce retry works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import Harness
from tests.support.live_server import LiveServer, run_live_server
from tests.support.oauth_live import REDIRECT, create_client, harness_code_flow


def _dpop_journey(live: LiveServer, harness: Harness) -> dict[str, Any]:
    client = create_client(live, "--type", "public", "--auth-method", "none")
    user = live.new_user()
    options = {
        "client_id": client["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "openid email offline_access",
    }
    _, done = harness_code_flow(harness, live, "adv-dpop", user, **options)
    assert done["sub"] == user["user"]["id"]
    return done


def _assert_bound_and_refused(done: dict[str, Any], *, nonce: bool) -> None:
    assert done["nonceAsked"] is nonce
    assert done["tokenType"] == "dpop"
    assert done["userinfo"]["ok"] is True, done["userinfo"]
    assert done["refreshedTokenType"] == "dpop"
    assert done["refreshedUserinfo"]["ok"] is True, done["refreshedUserinfo"]
    assert done["asBearer"]["ok"] is False
    assert done["asBearer"]["status"] == 401
    assert done["otherKey"]["ok"] is False
    assert done["otherKey"]["status"] == 401
    assert done["firstUse"]["status"] == 200
    for case in ("replayed", "wrongHtu", "staleIat"):
        assert done[case]["status"] == 401, (case, done[case])
        assert done[case]["error"] == "invalid_dpop_proof", (case, done[case])
        assert done[case]["challenge"].startswith("DPoP "), (case, done[case])
    assert done["refreshOtherKey"]["ok"] is False
    assert done["refreshOtherKey"]["error"] == "invalid_grant"


def test_openid_client_uses_dpop_bound_tokens(live_server: LiveServer, harness: Harness) -> None:
    _assert_bound_and_refused(_dpop_journey(live_server, harness), nonce=False)


@pytest.mark.slow
def test_openid_client_retries_with_the_server_nonce(tmp_path: Path, harness: Harness) -> None:
    with run_live_server(tmp_path, AUTH_OAUTH__DPOP_NONCE="true") as live:
        _assert_bound_and_refused(_dpop_journey(live, harness), nonce=True)


def test_oauth4webapi_calls_the_json_api_with_dpop(
    live_server: LiveServer, harness: Harness
) -> None:
    """The /v1 API's own tokens, bound at sign-in and used through oauth4webapi's
    ``protectedResourceRequest`` with a DPoP handle; as Bearer they are refused with
    challenges the library parses (docs/adr/0732)."""
    user = live_server.new_user()
    done = harness.run(
        "api-dpop", base_url=live_server.url, email=user["email"], password=user["password"]
    )
    assert done["tokenType"] == "DPoP"
    assert done["meStatus"] == 200
    assert done["me"]["id"] == user["user"]["id"]
    refused = done["asBearer"]
    assert refused["refused"] is True, refused
    assert refused["status"] == 401
    schemes = {c["scheme"]: c["parameters"] for c in refused["challenges"]}
    assert schemes["bearer"]["error"] == "invalid_token"
    assert "ES256" in schemes["dpop"]["algs"]
