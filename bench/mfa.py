"""The ``login_totp`` scenario's data: users with a confirmed authenticator app, and the codes
wrk presents.

Seeded like the plain users (one shared argon2id hash, ``COPY``) as ``totp<i>@bench.invalid``,
each with a TOTP row sealed under the bench's master key (the service opens it as its own).
All share ONE secret, so the code of a time step is the same for every user: wrk gets the
codes of the steps the run spans (``BENCH_TOTP_CODES``) and never computes HMAC-SHA1 in Lua.
A code is accepted once per user and step, so each wrk thread walks its own users in order
and none signs in twice (``totp_users`` must exceed the sign-ins of a run).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pyotp

from auth_service.mfa.deps import totp_aad
from auth_service.security.aead import MasterKey

SECRET = pyotp.random_base32(32)
PERIOD = 30


def seed_totp_users(
    psql: Callable[..., str], db: str, env: dict[str, str], count: int, tenant: str
) -> dict[str, float | int]:
    """After ``seed_users``: its shared hash, and ``count`` users with an authenticator app."""
    key = MasterKey.from_text(Path(env["AUTH_MASTER_KEY_FILE"]).read_text())
    encoded_hash = psql("SELECT password_hash FROM users LIMIT 1", db=db)
    now = dt.datetime.now(dt.UTC).isoformat()
    start = time.perf_counter()
    users, secrets = [], []
    for i in range(count):
        user_id = uuid.uuid4()
        users.append(
            f"{user_id}\ttotp{i}@bench.invalid\tTOTP {i}\t{encoded_hash}\tactive\t{now}\t{now}"
            f"\t{now}\t{now}\t{tenant}\n"
        )
        sealed = key.seal(SECRET.encode(), totp_aad(user_id))
        secrets.append(f"{user_id}\t{tenant}\t\\\\x{sealed.hex()}\t{now}\t{now}\n")
    psql(
        "COPY users (id, email, name, password_hash, status, email_verified_at, "
        "password_changed_at, created_at, updated_at, tenant_id) FROM STDIN",
        db=db,
        stdin="".join(users),
    )
    psql(
        "COPY mfa_totp (user_id, tenant_id, secret_sealed, created_at, confirmed_at) FROM STDIN",
        db=db,
        stdin="".join(secrets),
    )
    return {"totp_users": count, "seconds": round(time.perf_counter() - start, 2)}


def wrk_env(count: int, duration: float) -> dict[str, str]:
    """The codes of every step from one before now to one after the run ends."""
    otp = pyotp.TOTP(SECRET)
    first = int(time.time()) // PERIOD - 1
    last = int(time.time() + duration + 60) // PERIOD + 1
    codes = ",".join(f"{step}:{otp.generate_otp(step)}" for step in range(first, last + 1))
    return {"BENCH_TOTP_USERS": str(count), "BENCH_TOTP_CODES": codes}
