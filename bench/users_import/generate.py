"""Write an NDJSON file of N accounts for `users import` (bench/users_import/README.md).

    .venv/bin/python -m bench.users_import.generate OUT.ndjson --users 1000000 [--bad-every 1000]

Each line: external_id, email, name, email_verified, locale and a password hash. The hashes
cycle through a few real ones of every imported format (argon2id, bcrypt, Django PBKDF2,
passlib scrypt), computed once: import cost does not depend on a hash's value, and a million
distinct hashes would take hours of CPU. Every ``--bad-every``-th line is malformed, so the
refusal path runs too. Written line by line: the generator holds no more than one line.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
from pathlib import Path

import bcrypt
from argon2 import PasswordHasher

PASSWORD = "bench pass phrase"


def _hashes() -> list[str]:
    salt = base64.b64encode(os.urandom(9)).decode()
    django = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt.encode(), 100_000)
    scrypt_salt = os.urandom(16)
    scrypt_key = hashlib.scrypt(PASSWORD.encode(), salt=scrypt_salt, n=2**14, r=8, p=1, dklen=32)

    def ab64(b: bytes) -> str:
        return base64.b64encode(b).decode().rstrip("=").replace("+", ".")

    return [
        PasswordHasher(time_cost=2, memory_cost=19456).hash(PASSWORD),
        bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode(),
        f"pbkdf2_sha256$100000${salt}${base64.b64encode(django).decode()}",
        f"$scrypt$ln=14,r=8,p=1${ab64(scrypt_salt)}${ab64(scrypt_key)}",
    ]


def generate(path: Path, users: int, bad_every: int) -> int:
    hashes = _hashes()
    with path.open("w") as out:
        for i in range(users):
            if bad_every and i % bad_every == bad_every - 1:
                out.write(json.dumps({"external_id": f"broken-{i}", "email": "no address"}) + "\n")
                continue
            line = {
                "external_id": f"legacy-{i}",
                "email": f"user{i}@import.example.com",
                "name": f"Imported User {i}",
                "password_hash": hashes[i % len(hashes)],
                "email_verified": i % 3 != 0,
                "locale": "de" if i % 5 == 0 else None,
            }
            out.write(json.dumps(line) + "\n")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--bad-every", type=int, default=1000, help="0: no malformed lines")
    args = parser.parse_args()
    size = generate(args.out, args.users, args.bad_every)
    print(f"{args.out}: {args.users} lines, {size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
