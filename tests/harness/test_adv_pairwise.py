"""Pairwise subject identifiers (OIDC Core 8.1) as openid-client 6 sees them: the ID token's
``sub`` is not the user's id, the library accepts it (signature, nonce, and the UserInfo
``sub`` it requires to equal the ID token's), and a second client of the same sector gets the
same ``sub``."""

from __future__ import annotations

from playwright.async_api import Page

from tests.support.live_server import LiveServer
from tests.support.oidc_harness import Clients, RelyingParty


async def test_openid_client_accepts_pairwise_subjects_stable_within_a_sector(
    page: Page, live_server: LiveServer, rp: RelyingParty, clients: Clients
) -> None:
    first = clients.register("openid-client, pairwise", alg="ES256", subject_type="pairwise")
    second = clients.register("openid-client, pairwise too", subject_type="pairwise")
    user = live_server.new_user()
    seen = []
    for client in (first, second):
        result = await rp.run("oidc-code-flow", client, rp.browser(page, user))
        claims = result["tokens"]["claims"]
        assert claims["aud"] == client.client_id
        assert result["userinfo"]["sub"] == claims["sub"]  # openid-client checks it too
        seen.append(claims["sub"])
    assert seen[0] != user["user"]["id"]
    assert seen[0] == seen[1]  # one sector (the relying party's redirect host), one subject
