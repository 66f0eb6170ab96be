"""Second factors of a user. Secrets are sealed (TOTP) or hashed (recovery codes); a passkey
is a public key, which is no secret."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from auth_service.db.base import Base, TenantScoped, utcnow


class TotpSecret(TenantScoped, Base):
    """A user's authenticator app (RFC 6238). One per user; ``confirmed_at`` NULL while the
    enrolment waits for its first code."""

    __tablename__ = "mfa_totp"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # AES-256-GCM under the master key, bound to the user id (associated data).
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    # The time step (RFC 6238 section 4.2, T) of the last code accepted: a code of this step
    # or an earlier one is refused, so a code works once (section 5.2).
    last_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(TenantScoped, Base):
    """One single-use recovery code (a look-up secret, SP 800-63B 5.1.2), as an HMAC."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class PasskeyCredential(TenantScoped, Base):
    """A WebAuthn public key credential (W3C WebAuthn Level 3, section 6.5.2)."""

    __tablename__ = "mfa_passkeys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(2048))  # COSE_Key
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    name: Mapped[str] = mapped_column(String(64))
    aaguid: Mapped[str | None] = mapped_column(String(36))
    transports: Mapped[list[str] | None] = mapped_column(JSON)
    # multi_device (synced, backup eligible: amr swk) or single_device (amr hwk).
    device_type: Mapped[str] = mapped_column(String(16))
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]


class MfaEnrolmentGrace(TenantScoped, Base):
    """When a user of a role that requires a second factor first signed in without one: the
    grace period (``mfa.enrolment_grace_days``) counts from here."""

    __tablename__ = "mfa_enrolment_grace"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
