"""Every Prometheus metric of the service, named once.

Works in prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) when the server
runs several workers: gauges declare how their per-process values combine.
"""

from __future__ import annotations

import atexit
import inspect
import os
import weakref
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics

# In multiprocess mode every metric opens a file in this directory as it is defined: a CLI
# command run with the variable set but the directory absent (``migrate`` before the first
# ``serve``) must not die on import.
if _multiproc_dir := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(_multiproc_dir, exist_ok=True)

# `_created` series double the series count and no dashboard or alert reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class _FoldFirst:
    """Registered before every metric, so that a collection (``generate_latest``,
    ``get_sample_value``) first folds the plain per-process counts of the HTTP metrics
    (``web/middleware.py``) into the objects below (ADR 0435)."""

    def collect(self) -> list[Any]:
        fold_pending()
        return []


# How long after a request its plain counts may wait to be folded by the fold timer, and how
# long a scrape in multiprocess mode waits for the other workers' timers (ADR 0435).
FOLD_SECONDS = 0.1
SCRAPE_WAIT_SECONDS = 0.5

# Functions folding plain per-process counts into the metric objects (the HTTP recorders).
# A recorder's bound method is held weakly: an app that is gone (tests build many) goes too.
_FOLDERS: list[Callable[[], Callable[[], None] | None]] = []


def add_folder(folder: Callable[[], None]) -> None:
    if inspect.ismethod(folder):
        _FOLDERS.append(weakref.WeakMethod(folder))
    else:
        _FOLDERS.append(lambda: folder)


def fold_pending() -> None:
    """Fold every plain count not yet in the metric objects (a scrape, exit, the fold timer)."""
    live = []
    for ref in list(_FOLDERS):
        folder = ref()
        if folder is not None:
            folder()
            live.append(ref)
    _FOLDERS[:] = live


REGISTRY.register(_FoldFirst())
atexit.register(fold_pending)

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
# Not "auth_users_total": the _total suffix is reserved for counters (promtool check metrics).
USERS_TOTAL = Gauge("auth_users", "User accounts (sampled)", multiprocess_mode="mostrecent")
MAIL_SENT = Counter("auth_mail_sent", "Mail messages delivered")
MAIL_FAILED = Counter("auth_mail_failed", "Mail messages given up after retries")

# Durable jobs (docs/operations/jobs.md). Outcomes: success, retry, dead, released (given
# back on shutdown), lost (lease taken over while running).
JOB_RUNS = Counter("auth_job_runs", "Job attempts by kind and outcome", ["kind", "outcome"])
JOB_DURATION = Histogram(
    "auth_job_duration_seconds",
    "Duration of one job attempt",
    ["kind"],
    buckets=(*_LATENCY, 30.0, 60.0, 300.0),
)
# Sampled from the jobs table, which every process sees alike.
JOB_QUEUE_DEPTH = Gauge(
    "auth_job_queue_depth",
    "Jobs by kind and state (queued, running, dead; sampled)",
    ["kind", "state"],
    multiprocess_mode="mostrecent",
)
JOB_OLDEST_AGE = Gauge(
    "auth_job_oldest_age_seconds",
    "Age of the oldest queued or running job, by kind (sampled)",
    ["kind"],
    multiprocess_mode="mostrecent",
)

# Housekeeping (docs/operations/housekeeping.md): the label is the table.
HOUSEKEEPING_ROWS_PURGED = Counter(
    "auth_housekeeping_rows_purged", "Rows deleted by housekeeping, by table", ["table"]
)
HOUSEKEEPING_TABLE_ROWS = Gauge(
    "auth_housekeeping_table_rows",
    "Rows of each table housekeeping purges (sampled after every run)",
    ["table"],
    multiprocess_mode="mostrecent",
)

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
# 1 while this worker's invalidation subscription is confirmed (ADR 0430); livemin: 0 when
# any live worker has lost it (its per-worker caches then read the database).
INVALIDATION_BUS_UP = Gauge(
    "auth_invalidation_bus_up",
    "Invalidation subscription confirmed (min over workers)",
    multiprocess_mode="livemin",
)

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

# Health, configuration reload and alerting (docs/operations/health.md)
HEALTH_CHECK_STATUS = Gauge(
    "auth_health_check_status",
    "Health check result: 1 up, 0.5 degraded, 0 down",
    ["check"],
    multiprocess_mode="min",
)
HEALTH_CHECK_DURATION = Histogram(
    "auth_health_check_duration_seconds",
    "Health check duration",
    ["check"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
READY = Gauge(
    "auth_ready", "1 when the process accepts traffic (readiness)", multiprocess_mode="min"
)
CONFIG_RELOADS = Counter("auth_config_reloads", "Configuration reload attempts", ["result"])
ALERT_DELIVERIES = Counter(
    "auth_alert_deliveries", "Alert notifications by channel and result", ["channel", "result"]
)
TLS_CERT_EXPIRY = Gauge(
    "auth_tls_certificate_expiry_timestamp_seconds",
    "notAfter of the certificate served by a checked host",
    ["host"],
    multiprocess_mode="min",
)


# Every label value a rule or dashboard matches on exists from the first scrape, at 0, so that
# rate() and increase() see the first event instead of a series appearing out of nothing.
_KNOWN_LABELS: tuple[tuple[Counter | Histogram, tuple[str, ...]], ...] = (
    (LOGINS, ("success", "bad_credentials", "locked", "rate_limited", "disabled", "shed")),
    (REGISTRATIONS, ("success", "conflict", "invalid", "rate_limited")),
    (REFRESHES, ("success", "grace", "invalid", "expired", "reuse_detected", "rate_limited")),
    (PASSWORD_RESETS, ("requested", "completed", "invalid")),
    (EMAIL_VERIFICATIONS, ("success", "invalid")),
    (PASSWORD_HASH_DURATION, ("hash", "verify")),
)
for _metric, _values in _KNOWN_LABELS:
    for _value in _values:
        _metric.labels(_value)

# Backups and disaster recovery
BACKUP_LAST_SUCCESS = Gauge(
    "auth_backup_last_success_timestamp_seconds",
    "End time of the newest successful backup",
    ["kind"],
    multiprocess_mode="max",
)
BACKUP_DURATION = Gauge(
    "auth_backup_duration_seconds", "Duration of the last backup", ["kind"], multiprocess_mode="max"
)
BACKUP_BYTES = Gauge(
    "auth_backup_bytes", "Stored size of the last backup", ["kind"], multiprocess_mode="max"
)
BACKUP_FAILURES = Counter("auth_backup_failures", "Backups that failed", ["kind"])
WAL_ARCHIVE_LAG = Gauge(
    "auth_wal_archive_lag_seconds",
    "Seconds since the newest archived WAL file",
    multiprocess_mode="mostrecent",
)
BACKUP_LAST_VERIFICATION = Gauge(
    "auth_backup_last_verification_timestamp_seconds",
    "Time of the last successful backup verification",
    multiprocess_mode="max",
)
REPLICATION_LAG_SECONDS = Gauge(
    "auth_replication_lag_seconds", "Standby replay lag in seconds", multiprocess_mode="mostrecent"
)
REPLICATION_LAG_BYTES = Gauge(
    "auth_replication_lag_bytes", "Standby replay lag in bytes", multiprocess_mode="mostrecent"
)
DR_AUTO_FAILOVERS = Counter(
    "auth_dr_auto_failovers",
    "Automatic failovers run by this observer (dr watch), by outcome",
    ["outcome"],
)
# At 0 from the first scrape, as _KNOWN_LABELS above: the first failover is an increase.
for _outcome in ("success", "failed"):
    DR_AUTO_FAILOVERS.labels(_outcome)
# Labelled by observer id, so that only observers export them (not every service process).
DR_OBSERVER_PRIMARY_REACHABLE = Gauge(
    "auth_dr_observer_primary_reachable",
    "1 when this observer (dr watch) reached the primary at its last probe, else 0",
    ["observer"],
    multiprocess_mode="mostrecent",
)
DR_OBSERVERS_FRESH = Gauge(
    "auth_dr_auto_observers_fresh",
    "Fresh observations this observer saw at its last decision (below quorum: no failover)",
    ["observer"],
    multiprocess_mode="mostrecent",
)
DR_AUTO_ENABLED = Gauge(
    "auth_dr_auto_enabled",
    "1 when this observer (dr watch) may fail over (dr.auto.enabled), 0 when it only observes",
    ["observer"],
    multiprocess_mode="mostrecent",
)
DR_AUTO_QUORUM = Gauge(
    "auth_dr_auto_quorum",
    "Fresh observations this observer (dr watch) needs before failing over (dr.auto.quorum)",
    ["observer"],
    multiprocess_mode="mostrecent",
)
