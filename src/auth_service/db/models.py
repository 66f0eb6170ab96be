"""Import every model so Base.metadata knows all tables (Alembic, tests)."""

from auth_service.accounts.models import OneTimeToken, Role, Tenant, User, UserRole
from auth_service.audit.models import AuditEvent
from auth_service.db.base import Base
from auth_service.keys.models import SigningKey
from auth_service.sessions.models import RefreshToken, Session

__all__ = [
    "AuditEvent",
    "Base",
    "OneTimeToken",
    "RefreshToken",
    "Role",
    "Session",
    "SigningKey",
    "Tenant",
    "User",
    "UserRole",
]
