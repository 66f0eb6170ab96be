"""Audit event types, named once."""

USER_REGISTERED = "user.registered"
REGISTRATION_FOR_EXISTING_ACCOUNT = "user.registration_for_existing"
LOGIN_SUCCEEDED = "login.succeeded"
LOGIN_FAILED = "login.failed"
ACCOUNT_LOCKED = "account.locked"
RATE_LIMITED = "rate_limit.exceeded"
REFRESH_REUSE_DETECTED = "refresh.reuse_detected"
SESSION_LOGGED_OUT = "session.logged_out"
SESSION_REVOKED = "session.revoked"
PASSWORD_CHANGED = "password.changed"  # noqa: S105 - event name
PASSWORD_RESET_REQUESTED = "password.reset_requested"  # noqa: S105 - event name
PASSWORD_RESET = "password.reset"  # noqa: S105 - event name
EMAIL_VERIFIED = "email.verified"
ACCOUNT_DELETED = "account.deleted"
ADMIN_USER_UPDATED = "admin.user_updated"
ADMIN_USER_DELETED = "admin.user_deleted"
ADMIN_USER_CREATED = "admin.user_created"
ADMIN_PASSWORD_RESET_SENT = "admin.password_reset_sent"  # noqa: S105 - event name
ADMIN_PASSWORD_SET = "admin.password_set"  # noqa: S105 - event name
KEYS_ROTATED = "keys.rotated"
CONFIG_RELOADED = "config.reloaded"
DR_FAILOVER = "dr.failover"
DR_FAILBACK = "dr.failback"
DR_AUTO_FAILOVER = "dr.auto_failover"
JOB_RETRIED = "admin.job_retried"
JOB_DISCARDED = "admin.job_discarded"
OAUTH_CLIENT_CREATED = "oauth.client_created"
OAUTH_CLIENT_REGISTERED = "oauth.client_registered"  # RFC 7591 dynamic registration
OAUTH_CLIENT_UPDATED = "oauth.client_updated"
OAUTH_CLIENT_SECRET_ROTATED = "oauth.client_secret_rotated"  # noqa: S105 - event name
OAUTH_CLIENT_DELETED = "oauth.client_deleted"
OAUTH_CONSENT_GRANTED = "oauth.consent_granted"
OAUTH_CONSENT_REVOKED = "oauth.consent_revoked"
OAUTH_CODE_REPLAYED = "oauth.code_replayed"
OAUTH_TOKEN_REVOKED = "oauth.token_revoked"  # noqa: S105 - event name
OAUTH_DEVICE_APPROVED = "oauth.device_approved"  # RFC 8628: a user code allowed on /device
OAUTH_DEVICE_DENIED = "oauth.device_denied"
MFA_TOTP_ENROLLED = "mfa.totp_enrolled"
MFA_TOTP_REMOVED = "mfa.totp_removed"
MFA_PASSKEY_ADDED = "mfa.passkey_added"
MFA_PASSKEY_RENAMED = "mfa.passkey_renamed"
MFA_PASSKEY_REMOVED = "mfa.passkey_removed"
MFA_PASSKEY_CLONE_SUSPECTED = "mfa.passkey_clone_suspected"
MFA_RECOVERY_CODES_GENERATED = "mfa.recovery_codes_generated"
MFA_RECOVERY_CODE_USED = "mfa.recovery_code_used"
MFA_FAILED = "mfa.failed"
MFA_SUCCEEDED = "mfa.succeeded"
MFA_RESET_BY_ADMIN = "admin.mfa_reset"
USERS_IMPORTED = "admin.users_imported"
WEBHOOK_CREATED = "admin.webhook_created"
WEBHOOK_UPDATED = "admin.webhook_updated"
WEBHOOK_DELETED = "admin.webhook_deleted"
WEBHOOK_SECRET_ROTATED = "admin.webhook_secret_rotated"  # noqa: S105 - event name
HOUSEKEEPING_RUN = "housekeeping.run"
BACKUP_PRUNED = "backup.pruned"
ACCOUNT_EXPORTED = "account.exported"
ADMIN_USER_EXPORTED = "admin.user_exported"
ACCOUNT_DELETION_REQUESTED = "account.deletion_requested"
ACCOUNT_DELETION_CANCELLED = "account.deletion_cancelled"
ACCOUNT_ERASED = "account.erased"
FEDERATION_CONNECTOR_CREATED = "federation.connector_created"
FEDERATION_CONNECTOR_UPDATED = "federation.connector_updated"
FEDERATION_CONNECTOR_DELETED = "federation.connector_deleted"
FEDERATION_SIGNED_IN = "federation.signed_in"
FEDERATION_FAILED = "federation.failed"
FEDERATION_ACCOUNT_CREATED = "federation.account_created"
FEDERATION_LINKED = "federation.linked"
FEDERATION_UNLINKED = "federation.unlinked"
OAUTH_BACKCHANNEL_LOGOUT_SENT = "oauth.backchannel_logout_sent"
OAUTH_BACKCHANNEL_LOGOUT_FAILED = "oauth.backchannel_logout_failed"
OAUTH_TOKEN_EXCHANGED = "oauth.token_exchanged"  # noqa: S105 - event name
FEDERATION_ROLES_CHANGED = "federation.roles_changed"
FEDERATION_BREAKER_OPENED = "federation.breaker_opened"
ADMIN_ROLE_CREATED = "admin.role_created"
ADMIN_ROLE_UPDATED = "admin.role_updated"
ADMIN_ROLE_DELETED = "admin.role_deleted"
REALM_APPLIED = "admin.realm_applied"


def catalogue() -> frozenset[str]:
    """Every event type above: the names webhooks subscribe to (docs/operations/webhooks.md)."""
    return frozenset(
        value for name, value in globals().items() if name.isupper() and isinstance(value, str)
    )
