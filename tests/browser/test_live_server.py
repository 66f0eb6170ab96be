"""The live server's mail: the verification link arrives over SMTP and verifies the account."""

from __future__ import annotations

import httpx

from tests.support.live_server import LiveServer


def test_verification_mail_arrives_over_smtp_with_a_working_link(live_server: LiveServer) -> None:
    user = live_server.new_user()
    link = httpx.URL(live_server.mailbox.next_mail(user["email"]).link("/verify-email"))
    assert str(link).startswith(live_server.url)
    with live_server.client() as http:
        r = http.post("/v1/auth/email/verify", json={"token": link.params["token"]})
        assert r.status_code == 204, r.text
        me = http.get("/v1/users/me", headers={"Authorization": f"Bearer {user['access_token']}"})
    assert me.json()["email_verified"] is True
