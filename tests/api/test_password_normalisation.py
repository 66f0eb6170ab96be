"""Passwords are NFKC-normalised before hashing (NIST SP 800-63B 5.1.1.2), on both databases.

Registration, sign-in, password change and reset hash the normalised form; hashes stored
before normalisation (of the raw input) keep working and are replaced on the next sign-in.
"""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher as Argon2
from sqlalchemy import select, update

from auth_service.accounts.models import User
from tests.support.api import Api

PHRASE = "Grüße aus Köln, señor"
NFC = unicodedata.normalize("NFC", PHRASE)
NFD = unicodedata.normalize("NFD", PHRASE)
NFKC = unicodedata.normalize("NFKC", PHRASE)


async def _stored_hash(api: Api, email: str) -> str:
    async with api.services.db.sessionmaker() as s:
        value = await s.scalar(select(User.password_hash).where(User.email == email))
    assert value is not None
    return value


def _hashes(encoded: str, password: str) -> bool:
    try:
        return bool(Argon2().verify(encoded, password))
    except Exception:
        return False


async def test_register_with_nfc_then_sign_in_with_nfd(api: Api) -> None:
    assert NFC != NFD
    await api.user("koeln@example.com", NFC)
    assert (await api.login("koeln@example.com", NFD)).status_code == 200
    assert _hashes(await _stored_hash(api, "koeln@example.com"), NFKC)


async def test_a_hash_of_the_raw_nfd_form_signs_in_and_is_replaced(api: Api) -> None:
    email = "legacy@example.com"
    await api.user(email, "placeholder pass phrase")
    raw = Argon2(memory_cost=1024, time_cost=1, parallelism=1).hash(NFD)
    async with api.services.db.transaction() as s:
        await s.execute(update(User).where(User.email == email).values(password_hash=raw))
    assert (await api.login(email, NFC)).status_code == 401  # not the raw input that was hashed
    assert await _stored_hash(api, email) == raw
    assert (await api.login(email, NFD)).status_code == 200
    upgraded = await _stored_hash(api, email)
    assert upgraded != raw
    assert _hashes(upgraded, NFKC)
    assert not _hashes(upgraded, NFD)
    assert (await api.login(email, NFC)).status_code == 200  # every form works from now on


async def test_password_change_hashes_the_normalised_form(api: Api) -> None:
    user = await api.user()
    body = {"current_password": user["password"], "new_password": NFD}
    r = await api.client.post(
        "/v1/auth/password/change", json=body, headers=api.bearer(user["access_token"])
    )
    assert r.status_code == 204
    assert _hashes(await _stored_hash(api, user["email"]), NFKC)
    assert (await api.login(user["email"], NFC)).status_code == 200


async def test_password_reset_hashes_the_normalised_form(api: Api) -> None:
    user = await api.user()
    await api.client.post("/v1/auth/password/forgot", json={"email": user["email"]})
    token = await api.mailed_token("reset-password")
    r = await api.client.post("/v1/auth/password/reset", json={"token": token, "new_password": NFD})
    assert r.status_code == 204
    assert _hashes(await _stored_hash(api, user["email"]), NFKC)
    assert (await api.login(user["email"], NFC)).status_code == 200
