"""`users import`: accounts from another system, one JSON object per line (NDJSON).

Each line: ``{"external_id": "...", "email": "...", "name": "...", "password_hash": "...",
"email_verified": true, "locale": "de"}`` (only ``external_id`` and ``email`` required). The
hash is stored as it is — argon2 (``$argon2id$``, ``$argon2i$``), bcrypt (``$2a$``, ``$2b$``,
``$2y$``) or Django's PBKDF2 (``pbkdf2_sha256$``) — and upgraded to the service's argon2id at
the user's next sign-in (security.passwords). Lines are taken in batches, one transaction
each; an external id already imported is skipped, so a file can be imported again (after an
interruption) without adding anyone twice. A refused line never stops the import: it is
reported with its number and reason (never its hash). ADR 0921.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
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
from auth_service.security.text import CONTROL_CHARACTERS

HASH_PREFIXES = (
    "$argon2id$",
    "$argon2i$",
    "$2a$",
    "$2b$",
    "$2y$",
    "pbkdf2_sha256$",
    "$pbkdf2-sha256$",
)
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
    rejected: list[Rejected] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "imported": self.imported,
            "skipped": self.skipped,
            "rejected": len(self.rejected),
        }


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


def parse_line(number: int, raw: bytes) -> ImportLine | Rejected | None:
    """One line of the file: an account, why it is refused, or None for a blank line."""
    if not raw.strip():
        return None
    if len(raw) > MAX_LINE_BYTES:
        return Rejected(number, f"longer than {MAX_LINE_BYTES} bytes")
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
        password_hash = _text(data, "password_hash", 512, required=False)
        if password_hash is not None and not password_hash.startswith(HASH_PREFIXES):
            raise ValueError("password_hash is not argon2, bcrypt or pbkdf2_sha256 (Django)")
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


class UserImport:
    """Stores parsed lines batch by batch (``store``); ``finish`` audits the whole import."""

    def __init__(self, deps: AccountDeps) -> None:
        self._deps = deps

    async def store(self, lines: list[ImportLine], report: ImportReport) -> None:
        """One batch in one transaction. A concurrent change that breaks it (an account
        registered meanwhile) makes the batch go again line by line."""
        try:
            await self._store(lines, report)
        except IntegrityError:
            if len(lines) == 1:
                report.rejected.append(
                    Rejected(lines[0].number, "email already has an account", lines[0].external_id)
                )
                return
            for line in lines:
                await self.store([line], report)

    async def _store(self, lines: list[ImportLine], report: ImportReport) -> None:
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
            fresh, outcome = self._sorted(lines, done, taken)
            if fresh:
                users, ids = self._rows(fresh)
                await s.execute(insert(User), users)
                await s.execute(insert(UserExternalId), ids)
        report.imported += len(fresh)
        report.skipped += outcome.skipped
        report.rejected.extend(outcome.rejected)

    @staticmethod
    def _sorted(
        lines: Iterable[ImportLine], done: set[str], taken: set[str]
    ) -> tuple[list[ImportLine], ImportReport]:
        fresh: list[ImportLine] = []
        outcome = ImportReport()
        seen_ids, seen_emails = set(done), set(taken)
        for line in lines:
            if line.external_id in seen_ids:
                # Imported already, by an earlier run or line: the same account, kept as is.
                outcome.skipped += 1
            elif line.email in seen_emails:
                outcome.rejected.append(
                    Rejected(line.number, "email already has an account", line.external_id)
                )
            else:
                seen_ids.add(line.external_id)
                seen_emails.add(line.email)
                fresh.append(line)
        return fresh, outcome

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
