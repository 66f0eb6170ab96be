"""scrypt hashes as other systems store them (passlib's ``$scrypt$``, Werkzeug's
``scrypt:N:r:p$salt$hex``) and Firebase's modified scrypt, checked against vectors computed
independently: hashlib.scrypt for the first two, the published example of Firebase's own
tool (github.com/firebase/scrypt, README) for the third."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import pytest

from auth_service.config.settings import PasswordSettings
from auth_service.security.aead import MasterKey
from auth_service.security.passwords import (
    FirebaseScrypt,
    PasswordHasher,
    scrypt_hash_is_valid,
)

PASSWORD = "correct horse battery staple"

# Firebase's published example (firebase/scrypt README): project parameters, one user.
FIREBASE = FirebaseScrypt(
    signer_key=base64.b64decode(
        "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
    ),
    salt_separator=base64.b64decode("Bw=="),
    rounds=8,
    mem_cost=14,
)
FIREBASE_SALT = "42xEC+ixf3L2lw=="
FIREBASE_PASSWORD = "user1password"
FIREBASE_HASH = (
    "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ=="
)


def _ab64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=").replace("+", ".")


def passlib_scrypt(password: str, ln: int = 10, r: int = 8, p: int = 1) -> str:
    salt = b"0123456789abcdef"
    key = hashlib.scrypt(password.encode(), salt=salt, n=2**ln, r=r, p=p, dklen=32)
    return f"$scrypt$ln={ln},r={r},p={p}${_ab64(salt)}${_ab64(key)}"


def werkzeug_scrypt(password: str, n: int = 2**10, r: int = 8, p: int = 1) -> str:
    salt = "Zq3xR7nK0pLw2sVt"
    key = hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=r, p=p, dklen=64)
    return f"scrypt:{n}:{r}:{p}${salt}${key.hex()}"


@pytest.fixture
def hasher() -> Iterator[PasswordHasher]:
    key = MasterKey(bytes(range(32)))
    h = PasswordHasher(
        PasswordSettings(argon2_time_cost=1, argon2_memory_cost_kib=1024), master_key=key
    )
    yield h
    h.close()


def test_firebase_published_vector() -> None:
    derived = FIREBASE.derive(FIREBASE_PASSWORD, base64.b64decode(FIREBASE_SALT))
    assert base64.b64encode(derived).decode() == FIREBASE_HASH
    assert FIREBASE.derive("user1passwore", base64.b64decode(FIREBASE_SALT)) != derived


@pytest.mark.parametrize("encoded", [passlib_scrypt(PASSWORD), werkzeug_scrypt(PASSWORD)])
async def test_scrypt_forms_verify_and_ask_for_an_upgrade(
    hasher: PasswordHasher, encoded: str
) -> None:
    assert scrypt_hash_is_valid(encoded)
    result = await hasher.verify(encoded, PASSWORD)
    assert (result.ok, result.needs_rehash) == (True, True)
    assert not (await hasher.verify(encoded, PASSWORD + "!")).ok


async def test_firebase_stored_form_verifies_with_the_sealed_signer_key(
    hasher: PasswordHasher,
) -> None:
    stored = hasher.firebase_prefix(FIREBASE) + f"{FIREBASE_SALT}${FIREBASE_HASH}"
    # The signer key is a pepper: never in the stored form as it is.
    assert base64.b64encode(FIREBASE.signer_key).decode() not in stored
    result = await hasher.verify(stored, FIREBASE_PASSWORD)
    assert (result.ok, result.needs_rehash) == (True, True)
    assert not (await hasher.verify(stored, "user1passwore")).ok
    # Under another master key the signer key cannot be opened: a plain failure.
    other = PasswordHasher(PasswordSettings(), master_key=MasterKey(bytes(32)))
    try:
        assert not (await other.verify(stored, FIREBASE_PASSWORD)).ok
    finally:
        other.close()


@pytest.mark.parametrize(
    "encoded",
    [
        passlib_scrypt(PASSWORD).replace("ln=10", "ln=25"),  # 2^25 * 8 * 128 bytes: 32 GiB
        "$scrypt$ln=10,r=8$c2FsdA$a2V5",
        "scrypt:1000:8:1$salt$00ff",  # N not a power of two
        "scrypt:1024:8:1$salt$nothex",
        "scrypt:1024:8:1$$" + "00" * 32,
    ],
)
async def test_malformed_or_too_costly_scrypt_is_refused(
    hasher: PasswordHasher, encoded: str
) -> None:
    assert not scrypt_hash_is_valid(encoded)
    assert not (await hasher.verify(encoded, PASSWORD)).ok
