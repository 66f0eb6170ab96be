"""Every table of the service: importing this module registers each domain's models on
``Base.metadata``. An outer module (domains never import it): the migration environment's
autogenerate and the schema drift test use it; ``db`` itself knows no domain."""

from auth_service.accounts.models import (
    OneTimeToken,
    Role,
    Tenant,
    User,
    UserExternalId,
    UserRole,
)
from auth_service.audit.models import AuditEvent
from auth_service.db.base import Base
from auth_service.federation.models import ConnectorRow, FederatedIdentity
from auth_service.flows.models import FlowRow
from auth_service.jobs.models import JobRow
from auth_service.keys.models import SigningKey
from auth_service.mfa.models import MfaEnrolmentGrace, PasskeyCredential, RecoveryCode, TotpSecret
from auth_service.oauth.models import (
    AuthorizationCode,
    Consent,
    DeviceCode,
    DPoPBinding,
    OAuthClient,
    OAuthClientSecret,
    RevokedAccessToken,
    UsedJti,
)
from auth_service.sessions.models import RefreshToken, Session
from auth_service.webhooks.models import WebhookDelivery, WebhookEventType, WebhookSubscription

metadata = Base.metadata

__all__ = [
    "AuditEvent",
    "AuthorizationCode",
    "Base",
    "ConnectorRow",
    "Consent",
    "DPoPBinding",
    "DeviceCode",
    "FederatedIdentity",
    "FlowRow",
    "JobRow",
    "MfaEnrolmentGrace",
    "OAuthClient",
    "OAuthClientSecret",
    "OneTimeToken",
    "PasskeyCredential",
    "RecoveryCode",
    "RefreshToken",
    "RevokedAccessToken",
    "Role",
    "Session",
    "SigningKey",
    "Tenant",
    "TotpSecret",
    "UsedJti",
    "User",
    "UserExternalId",
    "UserRole",
    "WebhookDelivery",
    "WebhookEventType",
    "WebhookSubscription",
    "metadata",
]
