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
