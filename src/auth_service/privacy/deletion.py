"""Self-service account deletion with a grace period, and the final erasure.

Asking (password re-entered) sets ``users.deletion_due_at`` to now plus
``accounts.deletion_grace_days`` and ends every other session of the user. Until then the
account works: signing in cancels the deletion (accounts.credentials clears the date in the
statement recording the login), and so does ``DELETE /v1/users/me/deletion``. Housekeeping
then erases each account past its date: the audit events about it are kept but pseudonymised
(the user id replaced by a keyed hash, network address, browser and details dropped), and the
user row is deleted with everything that hangs off it (sessions and their tokens, factors,
consents, codes, flows).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.accounts.credentials import Credentials
from auth_service.accounts.errors import LastAdmin, UserNotFound
from auth_service.accounts.identity import BuiltinRole
from auth_service.accounts.invalidation import IdentityInvalidation
from auth_service.accounts.models import Role, User, UserRole
from auth_service.accounts.roles import active_admins
from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.models import AuditEvent
from auth_service.audit.service import AuditService
from auth_service.config.settings import Settings
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.mail.service import MailService
from auth_service.mail.templates import deletion_scheduled_email
from auth_service.security.aead import MasterKey
from auth_service.sessions.models import RefreshToken, Session
from auth_service.sessions.revocation import SessionRevoker

log = structlog.get_logger(__name__)

ERASURE = RequestContext(request_id="housekeeping", user_agent="auth-service housekeeping")
PSEUDONYMISED = {"pseudonymised": True}


@dataclass(frozen=True)
class Erased:
    accounts: int
    audit_events: int  # pseudonymised


class AccountDeletion:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        master_key: MasterKey,
        audit: AuditService,
        credentials: Credentials,
        revoker: SessionRevoker,
        mail: MailService,
        invalidation: IdentityInvalidation | None = None,
    ) -> None:
        self._db = db
        # Every process's identity cache forgets the user (ADR 0431).
        self._invalidation = invalidation
        self._mail = mail
        self.settings = settings
        self._audit = audit
        self._credentials = credentials
        self._revoker = revoker
        self._pseudonym_key = master_key.derive("audit-pseudonym")

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings

    def pseudonym(self, user_id: uuid.UUID) -> uuid.UUID:
        """The stand-in for ``user_id`` in the audit trail once the account is erased: the
        same for every event of the user (they stay linked), not reversible without the
        master key."""
        digest = hmac.new(self._pseudonym_key, user_id.bytes, hashlib.sha256).digest()
        return uuid.UUID(bytes=digest[:16], version=4)

    # ---- asking and cancelling ------------------------------------------------------------

    async def request(
        self,
        user_id: uuid.UUID,
        password: str,
        ctx: RequestContext,
        *,
        keep_session: uuid.UUID | None = None,
    ) -> datetime:
        """Schedule the erasure of the user's account; when it will happen. Every session but
        ``keep_session`` (the one asking, which can still cancel) ends. Raises UserNotFound,
        RateLimited, AccountLocked, InvalidCredentials or LastAdmin. The owner is mailed
        (when, and how to keep the account), in the same transaction."""
        await self._credentials.confirm_password(
            user_id, password, ctx, purpose=events.ACCOUNT_DELETION_REQUESTED
        )
        due = utcnow() + timedelta(days=self.settings.accounts.deletion_grace_days)
        async with self._db.transaction() as s:
            user = await s.get(User, user_id, with_for_update=True)
            if user is None:
                raise UserNotFound
            if await self._is_last_admin(s, user):
                raise LastAdmin
            user.deletion_due_at = due
            user.updated_at = utcnow()
            message = deletion_scheduled_email(
                self.settings.links_base_url,
                due.strftime("%Y-%m-%d %H:%M UTC"),
                user.locale or self.settings.ui.default_locale,
            )
            await self._mail.send(
                user.email, message.subject, message.text, session=s, tenant_id=user.tenant_id
            )
        await self._user_changed(user_id)  # deletion_due_at, seen by the kept session
        await self._revoker.revoke_user_sessions(
            user_id, reason="deletion_requested", keep=keep_session
        )
        await self._audit.record(
            events.ACCOUNT_DELETION_REQUESTED,
            ctx,
            subject=user_id,
            details={"due_at": due.isoformat()},
        )
        return due

    async def _user_changed(self, user_id: uuid.UUID) -> None:
        if self._invalidation is not None:
            await self._invalidation.user_changed(user_id)

    async def _is_last_admin(self, s: AsyncSession, user: User) -> bool:
        holds = await s.scalar(
            select(UserRole.user_id)
            .join(Role, Role.id == UserRole.role_id)
            .where(UserRole.user_id == user.id, Role.name == BuiltinRole.admin.value)
        )
        return holds is not None and await active_admins(s, user.tenant_id) <= 1

    async def cancel(self, user_id: uuid.UUID, ctx: RequestContext) -> bool:
        """Cancel a pending deletion; False when none was pending."""
        async with self._db.single() as conn:
            cancelled = await conn.scalar(
                update(User)
                .where(User.id == user_id, User.deletion_due_at.is_not(None))
                .values(deletion_due_at=None, updated_at=utcnow())
                .returning(User.id)
            )
        if cancelled is None:
            return False
        await self._user_changed(user_id)
        await self._audit.record(
            events.ACCOUNT_DELETION_CANCELLED, ctx, subject=user_id, details={"by": "request"}
        )
        return True

    # ---- the erasure (housekeeping) -------------------------------------------------------

    async def due(self, now: datetime, limit: int) -> list[uuid.UUID]:
        async with self._db.single() as conn:
            rows = await conn.scalars(
                select(User.id)
                .where(User.deletion_due_at.is_not(None), User.deletion_due_at <= now)
                .order_by(User.deletion_due_at)
                .limit(limit)
            )
            return list(rows)

    async def erase_due(self, now: datetime) -> Erased:
        """Erase every account whose deletion is due, one by one, in bounded statements."""
        batch = self.settings.housekeeping.batch_size
        accounts = pseudonymised = 0
        skipped: set[uuid.UUID] = set()
        while True:
            ids = [u for u in await self.due(now, batch + len(skipped)) if u not in skipped]
            if not ids:
                return Erased(accounts, pseudonymised)
            for user_id in ids:
                try:
                    done = await self.erase(user_id, now)
                except LastAdmin:
                    log.warning(
                        "account_erasure_refused", user_id=str(user_id), reason="last_admin"
                    )
                    skipped.add(user_id)
                    continue
                if done is None:
                    skipped.add(user_id)  # cancelled meanwhile (a sign-in)
                    continue
                accounts += 1
                pseudonymised += done

    async def erase(self, user_id: uuid.UUID, now: datetime) -> int | None:
        """Erase one account whose deletion is due; the audit events pseudonymised, or None
        when it is no longer due (cancelled, or gone)."""
        batch = self.settings.housekeeping.batch_size
        if not await self._still_due(user_id, now):
            return None
        pseudonym = self.pseudonym(user_id)
        mine = or_(AuditEvent.subject_user_id == user_id, AuditEvent.actor_user_id == user_id)
        async with self._db.single() as conn:
            count = int(
                await conn.scalar(select(func.count()).select_from(AuditEvent).where(mine)) or 0
            )
        # Each column keeps its meaning (who acted, who it was about), in batches.
        for column in (AuditEvent.subject_user_id, AuditEvent.actor_user_id):
            while True:
                ids = select(AuditEvent.id).where(column == user_id).limit(batch)
                stmt = (
                    update(AuditEvent)
                    .where(AuditEvent.id.in_(ids.scalar_subquery()))
                    .values({column: pseudonym, "ip": None, "user_agent": None})
                    .values(details=PSEUDONYMISED)
                )
                async with self._db.single() as conn:
                    changed = int((await conn.execute(stmt)).rowcount)
                if changed < batch:
                    break
        # A long refresh-token chain goes in batches, not in the cascade of one statement.
        while True:
            chain = (
                select(RefreshToken.id)
                .join(Session, Session.id == RefreshToken.session_id)
                .where(Session.user_id == user_id)
                .limit(batch)
            )
            async with self._db.single() as conn:
                gone = int(
                    (
                        await conn.execute(
                            delete(RefreshToken).where(RefreshToken.id.in_(chain.scalar_subquery()))
                        )
                    ).rowcount
                )
            if gone < batch:
                break
        async with self._db.transaction() as s:
            user = await s.get(User, user_id, with_for_update=True)
            if user is None or user.deletion_due_at is None or user.deletion_due_at > now:
                return None
            if await self._is_last_admin(s, user):
                raise LastAdmin
            await s.execute(delete(User).where(User.id == user_id))
        await self._user_changed(user_id)
        await self._audit.record(
            events.ACCOUNT_ERASED, ERASURE, subject=pseudonym, details={"audit_events": count}
        )
        log.info("account_erased", pseudonym=str(pseudonym), audit_events=count)
        return count

    async def _still_due(self, user_id: uuid.UUID, now: datetime) -> bool:
        async with self._db.single() as conn:
            due = await conn.scalar(select(User.deletion_due_at).where(User.id == user_id))
        return due is not None and due <= now
