"""Every Prometheus metric of the service, named once.

Works in prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) when the server
runs several workers: gauges declare how their per-process values combine.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# `_created` series double the series count and no dashboard or alert reads them.
disable_created_metrics()

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SIZES = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)

# HTTP
HTTP_REQUESTS = Counter(
    "auth_http_requests", "HTTP requests served", ["method", "route", "status_class"]
)
HTTP_DURATION = Histogram(
    "auth_http_request_duration_seconds",
    "HTTP request duration",
    ["method", "route"],
    buckets=_LATENCY,
)
HTTP_IN_FLIGHT = Gauge(
    "auth_http_requests_in_flight", "HTTP requests being served", multiprocess_mode="livesum"
)
HTTP_REQUEST_SIZE = Histogram(
    "auth_http_request_size_bytes", "HTTP request body size", ["route"], buckets=_SIZES
)
HTTP_RESPONSE_SIZE = Histogram(
    "auth_http_response_size_bytes", "HTTP response body size", ["route"], buckets=_SIZES
)

# Domain outcomes
LOGINS = Counter("auth_logins", "Login attempts by result", ["result"])
REGISTRATIONS = Counter("auth_registrations", "Registrations by result", ["result"])
REFRESHES = Counter("auth_token_refreshes", "Refresh-token exchanges by result", ["result"])
LOGOUTS = Counter("auth_logouts", "Sessions ended by logout")
PASSWORD_RESETS = Counter("auth_password_resets", "Password reset steps", ["stage"])
EMAIL_VERIFICATIONS = Counter("auth_email_verifications", "Email verifications", ["result"])
LOCKOUTS = Counter("auth_lockouts", "Temporary account lockouts started")
RATE_LIMITED = Counter(
    "auth_rate_limit_rejections", "Requests refused by a rate limiter", ["limiter"]
)
PASSWORD_HASH_DURATION = Histogram(
    "auth_password_hash_duration_seconds",
    "Password hash/verify time including queueing",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
TOKEN_SIGN_DURATION = Histogram(
    "auth_token_sign_duration_seconds",
    "Access-token signing time",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025),
)
ACTIVE_SESSIONS = Gauge(
    "auth_active_sessions",
    "Sessions neither revoked nor expired (sampled)",
    multiprocess_mode="mostrecent",
)
USERS_TOTAL = Gauge("auth_users_total", "User accounts (sampled)", multiprocess_mode="mostrecent")
MAIL_SENT = Counter("auth_mail_sent", "Mail messages delivered")
MAIL_FAILED = Counter("auth_mail_failed", "Mail messages given up after retries")

# Dependencies
DB_POOL_SIZE = Gauge("auth_db_pool_size", "Database pool size", multiprocess_mode="livesum")
DB_POOL_CHECKED_OUT = Gauge(
    "auth_db_pool_checked_out", "Database connections in use", multiprocess_mode="livesum"
)
DB_POOL_OVERFLOW = Gauge(
    "auth_db_pool_overflow", "Database connections beyond pool size", multiprocess_mode="livesum"
)
DB_QUERY_DURATION = Histogram(
    "auth_db_query_duration_seconds", "Database statement duration", buckets=_LATENCY
)
REDIS_ERRORS = Counter("auth_redis_errors", "Redis commands that failed")

# Identity of the running build and configuration
BUILD_INFO = Gauge(
    "auth_build_info",
    "Build of the running service",
    ["version", "commit", "python"],
    multiprocess_mode="max",
)
CONFIG_INFO = Gauge(
    "auth_config_info", "Hash of the applied configuration", ["hash"], multiprocess_mode="max"
)
