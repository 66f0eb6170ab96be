"""The metric contract the monitoring/ configuration is written against.

tests/monitoring/test_service_metrics.py holds it to the service: every metric the service
defines is here with its type and labels, and the label values the service emits are the ones
listed here. It is the one place the monitoring tests read metric names from, so that rules and
dashboards are checked against what the service really exposes.

Each entry maps the metric family name to its type and label names. Counters are named here
with the `_total` suffix and histograms by their base name, as they appear in an exposition
(prometheus_client style): a histogram `x` yields series `x_bucket`, `x_sum` and `x_count`.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

MetricType = Literal["counter", "gauge", "histogram"]


class Metric(NamedTuple):
    type: MetricType
    labels: tuple[str, ...] = ()


CONTRACT: Final[dict[str, Metric]] = {
    # HTTP
    "auth_http_requests_total": Metric("counter", ("method", "route", "status_class")),
    "auth_http_request_duration_seconds": Metric("histogram", ("method", "route")),
    "auth_http_requests_in_flight": Metric("gauge"),
    "auth_http_request_size_bytes": Metric("histogram", ("route",)),
    "auth_http_response_size_bytes": Metric("histogram", ("route",)),
    # Domain
    "auth_logins_total": Metric("counter", ("result",)),
    "auth_registrations_total": Metric("counter", ("result",)),
    "auth_token_refreshes_total": Metric("counter", ("result",)),
    "auth_logouts_total": Metric("counter"),
    "auth_password_resets_total": Metric("counter", ("stage",)),
    "auth_email_verifications_total": Metric("counter", ("result",)),
    "auth_lockouts_total": Metric("counter"),
    "auth_rate_limit_rejections_total": Metric("counter", ("limiter",)),
    "auth_password_hash_duration_seconds": Metric("histogram", ("operation",)),
    "auth_token_sign_duration_seconds": Metric("histogram"),
    "auth_active_sessions": Metric("gauge"),
    # A gauge: named without `_total` (promtool check metrics), unlike the brief's first draft.
    "auth_users": Metric("gauge"),
    "auth_mail_sent_total": Metric("counter"),
    "auth_mail_failed_total": Metric("counter"),
    # Durable jobs (issue 16)
    "auth_job_runs_total": Metric("counter", ("kind", "outcome")),
    "auth_job_duration_seconds": Metric("histogram", ("kind",)),
    "auth_job_queue_depth": Metric("gauge", ("kind", "state")),
    "auth_job_oldest_age_seconds": Metric("gauge", ("kind",)),
    # Housekeeping (issue 16): the label is the table purged or sized
    "auth_housekeeping_rows_purged_total": Metric("counter", ("table",)),
    "auth_housekeeping_table_rows": Metric("gauge", ("table",)),
    # Dependencies
    "auth_db_pool_size": Metric("gauge"),
    "auth_db_pool_checked_out": Metric("gauge"),
    "auth_db_pool_overflow": Metric("gauge"),
    "auth_db_query_duration_seconds": Metric("histogram"),
    "auth_redis_errors_total": Metric("counter"),
    "auth_invalidation_bus_up": Metric("gauge"),
    # Info
    "auth_build_info": Metric("gauge", ("version", "commit", "python")),
    "auth_config_info": Metric("gauge", ("hash",)),
    # Health (issue 4)
    "auth_health_check_status": Metric("gauge", ("check",)),
    "auth_health_check_duration_seconds": Metric("histogram", ("check",)),
    "auth_ready": Metric("gauge"),
    "auth_config_reloads_total": Metric("counter", ("result",)),
    "auth_alert_deliveries_total": Metric("counter", ("channel", "result")),
    "auth_tls_certificate_expiry_timestamp_seconds": Metric("gauge", ("host",)),
    # Backup and disaster recovery (issue 5)
    "auth_backup_last_success_timestamp_seconds": Metric("gauge", ("kind",)),
    "auth_backup_duration_seconds": Metric("gauge", ("kind",)),
    "auth_backup_bytes": Metric("gauge", ("kind",)),
    "auth_backup_failures_total": Metric("counter", ("kind",)),
    "auth_wal_archive_lag_seconds": Metric("gauge"),
    "auth_backup_last_verification_timestamp_seconds": Metric("gauge"),
    "auth_replication_lag_seconds": Metric("gauge"),
    "auth_replication_lag_bytes": Metric("gauge"),
    # Automatic failover observers (`dr watch`)
    "auth_dr_auto_failovers_total": Metric("counter", ("outcome",)),
    "auth_dr_observer_primary_reachable": Metric("gauge", ("observer",)),
    "auth_dr_auto_observers_fresh": Metric("gauge", ("observer",)),
    "auth_dr_auto_enabled": Metric("gauge", ("observer",)),
    "auth_dr_auto_quorum": Metric("gauge", ("observer",)),
}

# Label values the rules and dashboards match on; the service must emit exactly these.
LABEL_VALUES: Final[dict[tuple[str, str], frozenset[str]]] = {
    ("auth_http_requests_total", "status_class"): frozenset({"1xx", "2xx", "3xx", "4xx", "5xx"}),
    ("auth_logins_total", "result"): frozenset(
        {"success", "bad_credentials", "locked", "rate_limited", "disabled", "shed"}
    ),
    ("auth_registrations_total", "result"): frozenset(
        {"success", "conflict", "invalid", "rate_limited"}
    ),
    ("auth_token_refreshes_total", "result"): frozenset(
        {"success", "invalid", "expired", "reuse_detected", "grace", "rate_limited"}
    ),
    ("auth_password_resets_total", "stage"): frozenset({"requested", "completed", "invalid"}),
    ("auth_email_verifications_total", "result"): frozenset({"success", "invalid"}),
    ("auth_password_hash_duration_seconds", "operation"): frozenset({"hash", "verify"}),
    ("auth_config_reloads_total", "result"): frozenset({"applied", "unchanged", "error"}),
    ("auth_dr_auto_failovers_total", "outcome"): frozenset({"success", "failed"}),
    ("auth_job_runs_total", "outcome"): frozenset({"success", "retry", "dead", "released", "lost"}),
    ("auth_job_queue_depth", "state"): frozenset({"queued", "running", "dead"}),
}

# Buckets of auth_http_request_duration_seconds; SLO thresholds must be one of them.
HTTP_DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# Series Prometheus itself synthesises for every scrape target.
SYNTHETIC: Final[frozenset[str]] = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_series_added",
        "scrape_samples_post_metric_relabeling",
    }
)

SCRAPE_JOB: Final = "auth-service"


def series_names() -> frozenset[str]:
    """Every series name a scrape of the service can contain."""
    names: set[str] = set()
    for name, metric in CONTRACT.items():
        if metric.type == "histogram":
            names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
        else:
            names.add(name)
    return frozenset(names)
