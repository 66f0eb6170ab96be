from __future__ import annotations

from tests.support.api import Api


async def test_register_login_me_refresh_logout(api: Api) -> None:
    user = await api.user()
    r = await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
    assert r.status_code == 200
    assert r.json()["email"] == user["email"]
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert r.status_code == 200
    r = await api.client.post("/v1/auth/logout", json={"refresh_token": r.json()["refresh_token"]})
    assert r.status_code == 204
