"""Everything the service stores about one user, as JSON (GDPR art. 15 and 20).

Secrets never leave: no password hash, refresh-token or one-time-token hash, session cookie
hash, TOTP secret, recovery code, authorization code or passkey key material. What is there
is said by flags and metadata (``has_password``, a factor's dates, codes left).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from auth_service.accounts.errors import UserNotFound
from auth_service.accounts.models import OneTimeToken, Role, User, UserRole
from auth_service.audit.models import AuditEvent
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.federation.models import ConnectorRow, FederatedIdentity
from auth_service.mfa.models import PasskeyCredential, RecoveryCode, TotpSecret
from auth_service.oauth.models import Consent, OAuthClient
from auth_service.sessions.models import Session

FORMAT_VERSION = 1


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def export_user(db: Database, user_id: uuid.UUID) -> dict[str, Any]:
    """The export document. Raises UserNotFound."""
    async with db.sessionmaker() as s:
        user = await s.get(User, user_id)
        if user is None:
            raise UserNotFound
        roles = (
            await s.scalars(
                select(Role.name)
                .join(UserRole, UserRole.role_id == Role.id)
                .where(UserRole.user_id == user_id)
                .order_by(Role.name)
            )
        ).all()
        sessions = (
            await s.scalars(
                select(Session).where(Session.user_id == user_id).order_by(Session.created_at)
            )
        ).all()
        totp = await s.get(TotpSecret, user_id)
        passkeys = (
            await s.scalars(
                select(PasskeyCredential)
                .where(PasskeyCredential.user_id == user_id)
                .order_by(PasskeyCredential.created_at)
            )
        ).all()
        codes = (
            await s.execute(
                select(func.count(), func.count(RecoveryCode.used_at)).where(
                    RecoveryCode.user_id == user_id
                )
            )
        ).one()
        consents = (
            await s.execute(
                select(Consent, OAuthClient.client_id, OAuthClient.name)
                .join(OAuthClient, OAuthClient.id == Consent.client_pk)
                .where(Consent.user_id == user_id)
                .order_by(Consent.created_at)
            )
        ).all()
        linked = (
            await s.execute(
                select(FederatedIdentity, ConnectorRow.name)
                .join(ConnectorRow, ConnectorRow.id == FederatedIdentity.connector_id)
                .where(FederatedIdentity.user_id == user_id)
                .order_by(FederatedIdentity.created_at)
            )
        ).all()
        tokens = (
            await s.scalars(
                select(OneTimeToken)
                .where(OneTimeToken.user_id == user_id)
                .order_by(OneTimeToken.created_at)
            )
        ).all()
        audit = (
            await s.scalars(
                select(AuditEvent)
                .where(
                    or_(AuditEvent.subject_user_id == user_id, AuditEvent.actor_user_id == user_id)
                )
                .order_by(AuditEvent.occurred_at, AuditEvent.id)
            )
        ).all()
    return {
        "format": FORMAT_VERSION,
        "exported_at": utcnow().isoformat(),
        "profile": {
            "id": str(user.id),
            "email": user.email,
            "name": user.name,
            "status": user.status,
            "roles": list(roles),
            "locale": user.locale,
            "has_password": user.password_hash is not None,
            "email_verified_at": _when(user.email_verified_at),
            "password_changed_at": _when(user.password_changed_at),
            "last_login_at": _when(user.last_login_at),
            "created_at": _when(user.created_at),
            "updated_at": _when(user.updated_at),
            "deletion_due_at": _when(user.deletion_due_at),
        },
        "sessions": [
            {
                "id": str(row.id),
                "kind": row.kind,
                "client_id": row.client_id,
                "scope": row.scope,
                "created_at": _when(row.created_at),
                "last_used_at": _when(row.last_used_at),
                "expires_at": _when(row.expires_at),
                "revoked_at": _when(row.revoked_at),
                "revoked_reason": row.revoked_reason,
                "ip": row.ip,
                "user_agent": row.user_agent,
                "auth_time": _when(row.auth_time),
                "amr": row.amr or [],
                "acr": row.acr,
            }
            for row in sessions
        ],
        "factors": {
            "totp": None
            if totp is None
            else {"created_at": _when(totp.created_at), "confirmed_at": _when(totp.confirmed_at)},
            "passkeys": [
                {
                    "id": str(p.id),
                    "name": p.name,
                    "aaguid": p.aaguid,
                    "device_type": p.device_type,
                    "backed_up": p.backed_up,
                    "transports": p.transports or [],
                    "created_at": _when(p.created_at),
                    "last_used_at": _when(p.last_used_at),
                }
                for p in passkeys
            ],
            "recovery_codes": {"issued": int(codes[0]), "used": int(codes[1])},
        },
        "oauth_consents": [
            {
                "client_id": client_id,
                "client_name": client_name,
                "scopes": consent.scopes,
                "created_at": _when(consent.created_at),
                "updated_at": _when(consent.updated_at),
            }
            for consent, client_id, client_name in consents
        ],
        # Grants to OAuth clients are sessions of kind "oauth" (above).
        "linked_identities": [
            {
                "connector_id": identity.connector_id,
                "connector_name": connector_name,
                "subject": identity.subject,
                "email": identity.email,
                "created_at": _when(identity.created_at),
                "last_used_at": _when(identity.last_used_at),
                # Whether upstream tokens are kept, never their values.
                "upstream_tokens_stored": identity.tokens_sealed is not None,
                "upstream_tokens_updated_at": _when(identity.tokens_updated_at),
            }
            for identity, connector_name in linked
        ],
        "one_time_tokens": [
            {
                "purpose": t.purpose,
                "created_at": _when(t.created_at),
                "expires_at": _when(t.expires_at),
                "used_at": _when(t.used_at),
            }
            for t in tokens
        ],
        "audit_events": [
            {
                "id": str(e.id),
                "occurred_at": _when(e.occurred_at),
                "type": e.type,
                "outcome": e.outcome,
                "actor_user_id": str(e.actor_user_id) if e.actor_user_id else None,
                "subject_user_id": str(e.subject_user_id) if e.subject_user_id else None,
                "ip": e.ip,
                "user_agent": e.user_agent,
                "details": e.details,
            }
            for e in audit
        ],
    }
