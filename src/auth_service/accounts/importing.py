"""`users import`: accounts from another system, one JSON object per line (NDJSON), from a
file (``auth-service users import``) or a streamed request body (``POST
/v1/admin/users:import``): both run ``UserImport.run``.

Each line: ``{"external_id": "...", "email": "...", "name": "...", "password_hash": "...",
"email_verified": true, "locale": "de"}`` (only ``external_id`` and ``email`` required). The
hash is stored as it is — argon2 (``$argon2id$``, ``$argon2i$``), bcrypt (``$2a$``, ``$2b$``,
``$2y$``), PBKDF2 (Django ``pbkdf2_sha256$``, passlib ``$pbkdf2-sha256$``), scrypt (passlib
``$scrypt$``, ``scrypt:N:r:p$salt$hex``) — and upgraded to the service's argon2id at the
user's next sign-in (security.passwords). Firebase's modified scrypt: ``password_hash`` and
``password_salt`` in base64 as Firebase exports them, with the project's parameters given
once, as a first line ``{"hash_parameters": {...}}`` or (CLI) ``--hash-parameters FILE``.

Lines are taken in batches, one transaction each; an external id already imported is
skipped, so a file can be imported again (after an interruption) without adding anyone
twice. A refused line never stops the import: it is reported with its number and reason
(never its hash). Memory stays bounded whatever the input: lines are cut from chunks with a
bounded buffer (a longer line is refused unread), and refused lines go to a callback, not a
list. ADR 0921, ADR 0935.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from auth_service.accounts.deps import AccountDeps
from auth_service.accounts.emails import new_account_email
from auth_service.accounts.errors import InvalidEmail
from auth_service.accounts.models import User, UserExternalId
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.db.base import utcnow
from auth_service.security.passwords import FirebaseScrypt, scrypt_hash_is_valid
from auth_service.security.text import CONTROL_CHARACTERS

HASH_PREFIXES = (
    "$argon2id$",
    "$argon2i$",
    "$2a$",
    "$2b$",
    "$2y$",
    "pbkdf2_sha256$",
    "$pbkdf2-sha256$",
    "$scrypt$",
    "scrypt:",
    "scrypt$",
)
SCRYPT_PREFIXES = ("$scrypt$", "scrypt:", "scrypt$")
HASH_FORMATS = "argon2, bcrypt, pbkdf2_sha256 or scrypt"
MAX_LINE_BYTES = 16 * 1024


@dataclass(frozen=True)
class ImportLine:
    number: int
    external_id: str
    email: str
    name: str | None
    password_hash: str | None
    verified: bool
    locale: str | None


@dataclass(frozen=True)
class Rejected:
    number: int
    reason: str
    external_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.number, "external_id": self.external_id, "reason": self.reason}


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = 0  # already imported (same external id)
    rejected: int = 0

    def counts(self) -> dict[str, int]:
        return {"imported": self.imported, "skipped": self.skipped, "rejected": self.rejected}


@dataclass(frozen=True)
class FirebaseLines:
    """How lines with ``password_salt`` (Firebase's modified scrypt) are stored: the
    project's sealed parameters (``PasswordHasher.firebase_prefix``) + ``salt$hash``."""

    prefix: str
    hash_bytes: int  # Firebase's hash is the signer key encrypted: as long as the key


def _b64(value: str, key: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{key} is not base64") from None


def hash_parameters(data: Any) -> FirebaseScrypt:
    """A Firebase project's password hash parameters, named as its console shows them:
    ``{"algorithm": "SCRYPT", "base64_signer_key": ..., "base64_salt_separator": ...,
    "rounds": 8, "mem_cost": 14}``. ValueError says what is wrong (never the values)."""
    if not isinstance(data, dict):
        raise ValueError("hash_parameters must be an object")
    known = {"algorithm", "base64_signer_key", "base64_salt_separator", "rounds", "mem_cost"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"hash_parameters: unknown key {unknown[0]}")
    if str(data.get("algorithm", "SCRYPT")).upper() != "SCRYPT":
        raise ValueError("hash_parameters: only Firebase's SCRYPT is supported")
    rounds, mem_cost = data.get("rounds"), data.get("mem_cost")
    key, separator = data.get("base64_signer_key"), data.get("base64_salt_separator", "")
    if not isinstance(key, str) or not isinstance(separator, str):
        raise ValueError("hash_parameters: base64_signer_key and base64_salt_separator")
    if type(rounds) is not int or type(mem_cost) is not int:
        raise ValueError("hash_parameters: rounds and mem_cost must be integers")
    return FirebaseScrypt(
        _b64(key, "base64_signer_key"),
        _b64(separator, "base64_salt_separator"),
        rounds,
        mem_cost,
    )


def _text(data: dict[str, Any], key: str, limit: int, *, required: bool) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    if len(value) > limit:
        raise ValueError(f"{key} is longer than {limit} characters")
    if CONTROL_CHARACTERS.search(value):
        raise ValueError(f"{key} contains control characters")
    return value


def _password_hash(data: dict[str, Any], firebase: FirebaseLines | None) -> str | None:
    password_hash = _text(data, "password_hash", 512, required=False)
    salt = _text(data, "password_salt", 512, required=False)
    if salt is not None:
        if password_hash is None:
            raise ValueError("password_salt without password_hash")
        if firebase is None:
            raise ValueError("password_salt (Firebase scrypt) needs the project's hash_parameters")
        digest = _b64(password_hash, "password_hash")
        if len(digest) != firebase.hash_bytes:
            raise ValueError("password_hash is not as long as the Firebase signer key")
        return (
            firebase.prefix
            + base64.b64encode(_b64(salt, "password_salt")).decode()
            + ("$" + base64.b64encode(digest).decode())
        )
    if password_hash is None:
        return None
    if not password_hash.startswith(HASH_PREFIXES):
        raise ValueError(f"password_hash is not {HASH_FORMATS} (Django, passlib)")
    if password_hash.startswith(SCRYPT_PREFIXES) and not scrypt_hash_is_valid(password_hash):
        raise ValueError("password_hash: scrypt hash malformed or parameters out of bounds")
    return password_hash


def parse_line(
    number: int, raw: bytes | None, firebase: FirebaseLines | None = None
) -> ImportLine | Rejected | None:
    """One line of the file: an account, why it is refused, or None for a blank line.
    ``raw`` is None for a line longer than MAX_LINE_BYTES (cut, not read)."""
    if raw is None or len(raw) > MAX_LINE_BYTES:
        return Rejected(number, f"longer than {MAX_LINE_BYTES} bytes")
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return Rejected(number, "not JSON")
    if not isinstance(data, dict):
        return Rejected(number, "not a JSON object")
    external = data.get("external_id")
    external_id = external if isinstance(external, str) else None
    try:
        external_id = _text(data, "external_id", 200, required=True)
        email = new_account_email(_text(data, "email", 320, required=True) or "")
        password_hash = _password_hash(data, firebase)
        verified = data.get("email_verified", False)
        if not isinstance(verified, bool):
            raise ValueError("email_verified must be true or false")
        return ImportLine(
            number,
            external_id or "",
            email,
            _text(data, "name", 200, required=False),
            password_hash,
            verified,
            _text(data, "locale", 16, required=False),
        )
    except InvalidEmail as exc:
        return Rejected(number, f"email: {exc.reason}", external_id)
    except ValueError as exc:
        return Rejected(number, str(exc), external_id)


async def split_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, bytes | None]]:
    """Numbered lines of a byte stream, at most MAX_LINE_BYTES each held: a longer line is
    yielded as None once, and its bytes are dropped as they come until its newline."""
    buffer = b""  # the start of a line whose newline has not come yet
    number = 0
    overlong = False
    async for chunk in chunks:
        buffer += chunk
        position = 0
        while (end := buffer.find(b"\n", position)) >= 0:
            if overlong:  # the rest of a line already refused
                overlong = False
            else:
                number += 1
                yield number, (buffer[position:end] if end - position <= MAX_LINE_BYTES else None)
            position = end + 1
        buffer = buffer[position:]
        if len(buffer) > MAX_LINE_BYTES:
            if not overlong:
                number += 1
                overlong = True
                yield number, None
            buffer = b""
    if buffer and not overlong:
        number += 1
        yield number, buffer


def _header(raw: bytes | None) -> Any:
    """The value of a ``{"hash_parameters": ...}`` line, or None for any other line."""
    if raw is None or b"hash_parameters" not in raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if isinstance(data, dict) and set(data) == {"hash_parameters"}:
        return data["hash_parameters"]
    return None


OnRejected = Callable[[list[Rejected]], Awaitable[None]]


class UserImport:
    """Imports a stream of NDJSON (``run``), batch by batch; ``finish`` audits the import."""

    def __init__(self, deps: AccountDeps) -> None:
        self._deps = deps

    async def run(
        self,
        chunks: AsyncIterable[bytes],
        on_rejected: OnRejected,
        *,
        batch_size: int = 500,
        parameters: FirebaseScrypt | None = None,
        report: ImportReport | None = None,
    ) -> ImportReport:
        """Read, check and store every line of ``chunks``; refused lines go to
        ``on_rejected`` in line order, a batch at a time. ``parameters``: a Firebase project's
        hash parameters, unless the first line gives them (``{"hash_parameters": ...}``).
        ``report`` (filled as batches are stored) still holds the counts when the stream
        fails half way."""
        report = report if report is not None else ImportReport()
        firebase = self._firebase(parameters) if parameters else None
        batch: list[ImportLine] = []
        refused: list[Rejected] = []
        first = True

        async def flush() -> None:
            nonlocal batch, refused
            if batch:
                refused += await self.store(batch, report)
            if refused:
                refused.sort(key=lambda r: r.number)
                report.rejected += len(refused)
                await on_rejected(refused)
            batch, refused = [], []

        async for number, raw in split_lines(chunks):
            if first and (raw is None or raw.strip()):  # the first line that is not blank
                first = False
                header = _header(raw)
                if header is not None:
                    try:
                        firebase = self._firebase(hash_parameters(header))
                    except ValueError as exc:
                        refused.append(Rejected(number, str(exc)))
                    continue
            parsed = parse_line(number, raw, firebase)
            if isinstance(parsed, Rejected):
                refused.append(parsed)
            elif parsed is not None:
                batch.append(parsed)
            if len(batch) + len(refused) >= batch_size:
                await flush()
        await flush()
        return report

    def _firebase(self, parameters: FirebaseScrypt) -> FirebaseLines:
        return FirebaseLines(
            self._deps.hasher.firebase_prefix(parameters), len(parameters.signer_key)
        )

    async def store(self, lines: list[ImportLine], report: ImportReport) -> list[Rejected]:
        """One batch in one transaction; returns the lines refused. A concurrent change that
        breaks it (an account registered meanwhile) makes the batch go again line by line."""
        try:
            return await self._store(lines, report)
        except IntegrityError:
            if len(lines) == 1:
                return [
                    Rejected(lines[0].number, "email already has an account", lines[0].external_id)
                ]
            refused: list[Rejected] = []
            for line in lines:
                refused += await self.store([line], report)
            return refused

    async def _store(self, lines: list[ImportLine], report: ImportReport) -> list[Rejected]:
        tenant = self._deps.tenant_id
        async with self._deps.db.transaction() as s:
            done = set(
                await s.scalars(
                    select(UserExternalId.external_id).where(
                        UserExternalId.tenant_id == tenant,
                        UserExternalId.external_id.in_([x.external_id for x in lines]),
                    )
                )
            )
            taken = set(
                await s.scalars(
                    select(User.email).where(
                        User.tenant_id == tenant, User.email.in_([x.email for x in lines])
                    )
                )
            )
            fresh, skipped, refused = self._sorted(lines, done, taken)
            if fresh:
                users, ids = self._rows(fresh)
                await s.execute(insert(User), users)
                await s.execute(insert(UserExternalId), ids)
        report.imported += len(fresh)
        report.skipped += skipped
        return refused

    @staticmethod
    def _sorted(
        lines: Iterable[ImportLine], done: set[str], taken: set[str]
    ) -> tuple[list[ImportLine], int, list[Rejected]]:
        fresh: list[ImportLine] = []
        skipped = 0
        refused: list[Rejected] = []
        seen_ids, seen_emails = set(done), set(taken)
        for line in lines:
            if line.external_id in seen_ids:
                # Imported already, by an earlier run or line: the same account, kept as is.
                skipped += 1
            elif line.email in seen_emails:
                refused.append(
                    Rejected(line.number, "email already has an account", line.external_id)
                )
            else:
                seen_ids.add(line.external_id)
                seen_emails.add(line.email)
                fresh.append(line)
        return fresh, skipped, refused

    def _rows(self, lines: list[ImportLine]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        now = utcnow()
        users, ids = [], []
        for line in lines:
            user_id = uuid.uuid4()
            users.append(
                {
                    "id": user_id,
                    "tenant_id": self._deps.tenant_id,
                    "email": line.email,
                    "name": line.name,
                    "password_hash": line.password_hash,
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                    "password_changed_at": now if line.password_hash else None,
                    "email_verified_at": now if line.verified else None,
                    "last_login_at": None,
                    "locale": line.locale,
                }
            )
            ids.append(
                {
                    "user_id": user_id,
                    "tenant_id": self._deps.tenant_id,
                    "external_id": line.external_id,
                    "created_at": now,
                }
            )
        return users, ids

    async def finish(self, report: ImportReport, source: str, ctx: RequestContext) -> None:
        """Audit the import (counts and the file's name; no account data)."""
        await self._deps.audit.record(
            events.USERS_IMPORTED, ctx, details={"source": source[:200], **report.counts()}
        )
