"""Signing keys are stored sealed under the master key (ADR 0010), and a service started with
another master key refuses to start, saying why."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from auth_service.config.settings import Settings
from auth_service.keys.models import SigningKey
from auth_service.security.aead import MasterKey, MasterKeyError
from auth_service.services import build_services
from tests.support.net import free_port
from tests.support.server import CLI, base_env
from tests.support.settings import TEST_MASTER_KEY


async def _stored_keys(settings: Settings) -> list[SigningKey]:
    """Start the service's keys as a first start does; the rows as stored."""
    services = build_services(settings)
    try:
        await services.keys.ensure_keys()
        async with services.db.sessionmaker() as s:
            return list((await s.scalars(select(SigningKey))).all())
    finally:
        await services.close()


async def test_private_keys_are_sealed_under_the_master_key(settings: Settings) -> None:
    rows = await _stored_keys(settings)
    by_algorithm: dict[str, list[str]] = {}
    for row in rows:
        by_algorithm.setdefault(row.algorithm, []).append(row.status)
    assert "RS256" in by_algorithm  # and one pair for each other signing algorithm
    assert all(sorted(s) == ["active", "next"] for s in by_algorithm.values())
    master = MasterKey.from_text(TEST_MASTER_KEY)
    other = MasterKey.from_text(MasterKey.generate_text())
    for row in rows:
        sealed = bytes(row.private_key_encrypted)
        assert b"PRIVATE KEY" not in sealed
        assert b"-----BEGIN" not in sealed
        assert row.master_key_id == master.key_id
        pem = master.open(sealed, row.kid.encode())
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        # The key opened is the one published under this kid.
        token = jwt.encode({"sub": "x"}, pem, algorithm=row.algorithm)
        public = jwt.PyJWK(row.public_jwk).key
        assert jwt.decode(token, public, algorithms=[row.algorithm]) == {"sub": "x"}
        # Sealed for this kid only, and only this master key opens it.
        with pytest.raises(MasterKeyError):
            master.open(sealed, b"another-kid")
        with pytest.raises(MasterKeyError):
            other.open(sealed, row.kid.encode())


async def test_another_master_key_cannot_start_the_service(settings: Settings) -> None:
    await _stored_keys(settings)
    wrong = settings.model_copy(update={"master_key": SecretStr(MasterKey.generate_text())})
    services = build_services(wrong)
    try:
        with pytest.raises(MasterKeyError, match="cannot decrypt with this master key"):
            await services.start()
    finally:
        await services.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_serve_with_another_master_key_exits_and_says_why(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    await _stored_keys(settings)
    env = base_env(
        tmp_path,
        database_url,
        AUTH_MASTER_KEY=MasterKey.generate_text(),
        AUTH_SERVER__PORT=str(free_port()),
        AUTH_SERVER__MANAGEMENT_PORT=str(free_port()),
    )
    result = subprocess.run(
        [CLI, "serve"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "cannot decrypt with this master key" in output
    assert TEST_MASTER_KEY not in output
    assert env["AUTH_MASTER_KEY"] not in output
