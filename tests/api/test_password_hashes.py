"""Imported bcrypt/PBKDF2 hashes verify and are upgraded to argon2id on login; rehash on change."""

from __future__ import annotations

import base64
import hashlib
import os

import bcrypt
import pytest
from argon2 import PasswordHasher as Argon2
from sqlalchemy import select, update

from auth_service.accounts.models import User
from tests.support.api import Api

PASSWORD = "imported pass phrase"


def _django_pbkdf2(password: str) -> str:
    salt = base64.b64encode(os.urandom(9)).decode()
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 100_000)
    return f"pbkdf2_sha256$100000${salt}${base64.b64encode(digest).decode()}"


def _passlib_pbkdf2(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 29_000)

    def ab64(b: bytes) -> str:
        return base64.b64encode(b).decode().rstrip("=").replace("+", ".")

    return f"$pbkdf2-sha256$29000${ab64(salt)}${ab64(digest)}"


def _bcrypt(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


def _old_argon2(password: str) -> str:
    return Argon2(time_cost=1, memory_cost=512, parallelism=1).hash(password)


async def _set_hash(api: Api, email: str, encoded: str) -> None:
    async with api.services.db.transaction() as s:
        await s.execute(update(User).where(User.email == email).values(password_hash=encoded))


async def _stored_hash(api: Api, email: str) -> str:
    async with api.services.db.sessionmaker() as s:
        value = await s.scalar(select(User.password_hash).where(User.email == email))
    assert value is not None
    return value


@pytest.mark.parametrize("make_hash", [_bcrypt, _django_pbkdf2, _passlib_pbkdf2, _old_argon2])
async def test_foreign_or_outdated_hash_verifies_and_is_upgraded(
    api: Api, make_hash: object
) -> None:
    email = "migrated@example.com"
    await api.register(email, "placeholder pass phrase")
    old = make_hash(PASSWORD)  # type: ignore[operator]
    await _set_hash(api, email, old)
    assert (await api.login(email, "wrong pass phrase")).status_code == 401
    assert await _stored_hash(api, email) == old  # a failed login upgrades nothing
    assert (await api.login(email, PASSWORD)).status_code == 200
    new = await _stored_hash(api, email)
    assert new != old
    assert new.startswith("$argon2id$v=19$m=1024,t=1,p=1$")  # the configured parameters
    assert (await api.login(email, PASSWORD)).status_code == 200
    assert await _stored_hash(api, email) == new  # current hashes are left alone


async def test_malformed_stored_hash_is_a_plain_failure(api: Api) -> None:
    email = "broken@example.com"
    await api.register(email, "placeholder pass phrase")
    for broken in ("$2b$04$short", "pbkdf2_sha256$abc$salt$hash", "$argon2id$garbage", "plaintext"):
        await _set_hash(api, email, broken)
        assert (await api.login(email, PASSWORD)).status_code == 401
