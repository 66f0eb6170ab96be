#!/usr/bin/env python3
"""Generate the Grafana dashboards of auth-service (monitoring/grafana/dashboards/*.json).

The JSON files are committed and provisioned as is; this script is their source, so panels stay
consistent (datasource uids, variables, units, layout). Edit here, then run

    python3 scripts/monitoring/build_dashboards.py          # rewrite the JSON files
    python3 scripts/monitoring/build_dashboards.py --check  # exit 1 if they are out of date

Every PromQL expression may only name metrics of the service's contract
(tests/monitoring/metric_names.py), recording rules of monitoring/prometheus/rules, or the
series Prometheus synthesises per target (`up`, `scrape_*`); tests/monitoring enforces it.
Grafana variables: $job, $instance (and $route on the overview); $__rate_interval.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "monitoring" / "grafana" / "dashboards"
PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}
SCHEMA_VERSION = 39
SEL = 'job="$job",instance=~"$instance"'
RI = "$__rate_interval"

Panel = dict[str, Any]


def target(expr: str, legend: str = "", ref: str = "A", **extra: Any) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": PROM, "refId": ref, "expr": expr, "range": True}
    t["legendFormat"] = legend or "__auto"
    t.update(extra)
    return t


def targets(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [target(e, legend, ref=chr(ord("A") + i)) for i, (e, legend) in enumerate(pairs)]


def panel(
    kind: str,
    title: str,
    tgts: list[dict[str, Any]],
    *,
    w: int = 12,
    h: int = 8,
    unit: str = "short",
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    mappings: list[dict[str, Any]] | None = None,
    options: dict[str, Any] | None = None,
    custom: dict[str, Any] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    datasource: dict[str, str] = PROM,
) -> Panel:
    steps = [{"color": color, "value": value} for value, color in (thresholds or [(None, "green")])]
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "color": {"mode": "thresholds" if kind in ("stat", "gauge") else "palette-classic"},
    }
    if mappings:
        defaults["mappings"] = mappings
    if custom:
        defaults["custom"] = custom
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    p: Panel = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource,
        "targets": tgts,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or _default_options(kind),
        "gridPos": {"w": w, "h": h},
    }
    if kind == "logs":
        del p["fieldConfig"]
    return p


def _default_options(kind: str) -> dict[str, Any]:
    if kind == "timeseries":
        return {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    if kind == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
            "textMode": "auto",
        }
    if kind == "state-timeline":
        return {"showValue": "never", "mergeValues": True, "rowHeight": 0.8}
    return {}


def row(title: str) -> Panel:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"w": 24, "h": 1},
    }


def ts(title: str, tgts: list[dict[str, Any]], **kw: Any) -> Panel:
    return panel("timeseries", title, tgts, **kw)


def stat(title: str, expr: str, **kw: Any) -> Panel:
    kw.setdefault("w", 4)
    kw.setdefault("h", 4)
    return panel("stat", title, [target(expr, kw.pop("legend", ""), instant=False)], **kw)


HEALTH_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "down", "color": "red", "index": 0},
            "0.5": {"text": "degraded", "color": "orange", "index": 1},
            "1": {"text": "up", "color": "green", "index": 2},
        },
    },
]
READY_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "not ready", "color": "red", "index": 0},
            "1": {"text": "ready", "color": "green", "index": 1},
        },
    },
]


def variables(extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    def query_var(
        name: str, label: str, query: str, *, multi: bool, all_: bool, default: str | None = None
    ) -> dict[str, Any]:
        v: dict[str, Any] = {
            "type": "query",
            "name": name,
            "label": label,
            "datasource": PROM,
            "query": {"query": query, "refId": f"{name}-var"},
            "definition": query,
            "refresh": 2,
            "sort": 1,
            "multi": multi,
            "includeAll": all_,
            "hide": 0,
        }
        if all_:
            v["allValue"] = ".*"
            v["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
        elif default:
            v["current"] = {"selected": True, "text": default, "value": default}
        return v

    return {
        "list": [
            query_var(
                "job",
                "Job",
                "label_values(auth_build_info, job)",
                multi=False,
                all_=False,
                default="auth-service",
            ),
            query_var(
                "instance",
                "Instance",
                'label_values(auth_build_info{job="$job"}, instance)',
                multi=True,
                all_=True,
            ),
            *[query_var(**e) for e in (extra or [])],
        ]
    }


def layout(panels: list[Panel]) -> list[Panel]:
    """Assign ids and flow the panels left to right, top to bottom on the 24-column grid."""
    x = y = row_h = 0
    for i, p in enumerate(panels, start=1):
        p["id"] = i
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24 or p["type"] == "row":
            x, y, row_h = 0, y + row_h, 0
        p["gridPos"].update({"x": x, "y": y})
        x += w
        row_h = max(row_h, h)
        if p["type"] == "row":
            x, y, row_h = 0, y + h, 0
    return panels


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Panel],
    extra_vars: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["auth-service"],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [
            {
                "type": "dashboards",
                "tags": ["auth-service"],
                "asDropdown": True,
                "title": "auth-service",
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
            ]
        },
        "templating": variables(extra_vars),
        "panels": layout(panels),
    }


def q(quantile: float, metric: str, by: str, sel: str = SEL) -> str:
    return f"histogram_quantile({quantile}, sum by ({by}le) (rate({metric}_bucket{{{sel}}}[{RI}])))"


def overview() -> dict[str, Any]:
    rsel = SEL + ',route=~"$route"'
    req = "auth_http_requests_total"
    return dashboard(
        "auth-overview",
        "auth-service / Overview",
        "RED (rate, errors, duration) per route, and the latency SLO.",
        [
            row("Service"),
            stat(
                "Instances up", 'sum(up{job="$job"})', w=3, thresholds=[(None, "red"), (1, "green")]
            ),
            stat("Requests/s", f"sum(rate({req}{{{SEL}}}[{RI}]))", w=4, unit="reqps"),
            stat(
                "5xx ratio",
                f'sum(rate({req}{{{SEL},status_class="5xx"}}[{RI}])) / '
                f"sum(rate({req}{{{SEL}}}[{RI}]))",
                w=4,
                unit="percentunit",
                thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
            ),
            stat(
                "p99 latency",
                q(0.99, "auth_http_request_duration_seconds", ""),
                w=4,
                unit="s",
                thresholds=[(None, "green"), (0.5, "orange"), (1, "red")],
            ),
            stat("In flight", f"sum(auth_http_requests_in_flight{{{SEL}}})", w=3),
            stat(
                "Latency budget burn (1h)",
                'job:auth_http_request_slow:ratio_rate1h{job="$job"} / 0.01',
                w=3,
                unit="none",
                description="1 = budget spent exactly over 30 days; 14.4 pages.",
                thresholds=[(None, "green"), (6, "orange"), (14.4, "red")],
            ),
            stat(
                "Versions",
                'count(count by (version) (auth_build_info{job="$job"}))',
                w=3,
                thresholds=[(None, "green"), (2, "orange")],
            ),
            row("RED per route"),
            ts(
                "Request rate by route",
                [target(f"sum by (route) (rate({req}{{{rsel}}}[{RI}]))", "{{route}}")],
                unit="reqps",
            ),
            ts(
                "Requests by status class",
                [
                    target(
                        f"sum by (status_class) (rate({req}{{{rsel}}}[{RI}]))", "{{status_class}}"
                    )
                ],
                unit="reqps",
            ),
            ts(
                "5xx ratio by route",
                [
                    target(
                        f'sum by (route) (rate({req}{{{rsel},status_class="5xx"}}[{RI}])) / '
                        f"sum by (route) (rate({req}{{{rsel}}}[{RI}]))",
                        "{{route}}",
                    )
                ],
                unit="percentunit",
                minimum=0,
            ),
            ts(
                "4xx rate by route",
                [
                    target(
                        f'sum by (route) (rate({req}{{{rsel},status_class="4xx"}}[{RI}]))',
                        "{{route}}",
                    )
                ],
                unit="reqps",
            ),
            ts(
                "p99 latency by route",
                [
                    target(
                        q(0.99, "auth_http_request_duration_seconds", "route, ", rsel), "{{route}}"
                    )
                ],
                unit="s",
            ),
            ts(
                "p50 latency by route",
                [
                    target(
                        q(0.5, "auth_http_request_duration_seconds", "route, ", rsel), "{{route}}"
                    )
                ],
                unit="s",
            ),
            panel(
                "heatmap",
                "Latency distribution",
                [
                    target(
                        f"sum by (le) (increase(auth_http_request_duration_seconds_bucket"
                        f"{{{rsel}}}[{RI}]))",
                        "{{le}}",
                        format="heatmap",
                    )
                ],
                unit="s",
                options={
                    "calculate": False,
                    "yAxis": {"unit": "s"},
                    "cellGap": 1,
                    "color": {"scheme": "Oranges"},
                },
            ),
            ts(
                "Request and response size (p90) by route",
                [
                    target(
                        q(0.9, "auth_http_request_size_bytes", "route, ", rsel),
                        "request {{route}}",
                        ref="A",
                    ),
                    target(
                        q(0.9, "auth_http_response_size_bytes", "route, ", rsel),
                        "response {{route}}",
                        ref="B",
                    ),
                ],
                unit="bytes",
            ),
            row("SLO"),
            ts(
                "Slow requests (> 1 s) ratio by window",
                targets(
                    ('job:auth_http_request_slow:ratio_rate5m{job="$job"}', "5m"),
                    ('job:auth_http_request_slow:ratio_rate30m{job="$job"}', "30m"),
                    ('job:auth_http_request_slow:ratio_rate1h{job="$job"}', "1h"),
                    ('job:auth_http_request_slow:ratio_rate6h{job="$job"}', "6h"),
                ),
                unit="percentunit",
                thresholds=[(None, "green"), (0.06, "orange"), (0.144, "red")],
                custom={"thresholdsStyle": {"mode": "line"}},
                description="Budget: 1% of requests may take more than 1 s. Critical alert at "
                "14.4% (1h and 5m), warning at 6% (6h and 30m).",
            ),
            ts(
                "5xx ratio by window",
                targets(
                    ('job:auth_http_requests_5xx:ratio_rate5m{job="$job"}', "5m"),
                    ('job:auth_http_requests_5xx:ratio_rate30m{job="$job"}', "30m"),
                ),
                unit="percentunit",
                thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
                custom={"thresholdsStyle": {"mode": "line"}},
            ),
        ],
        extra_vars=[
            {
                "name": "route",
                "label": "Route",
                "query": 'label_values(auth_http_requests_total{job="$job"}, route)',
                "multi": True,
                "all_": True,
            }
        ],
    )


def security() -> dict[str, Any]:
    return dashboard(
        "auth-security",
        "auth-service / Security",
        "Login outcomes, lockouts, refresh-token reuse, rate limiting and the audit log.",
        [
            row("Now"),
            stat(
                "Login failure ratio (5m)",
                'job:auth_login_failures:ratio_rate5m{job="$job"}',
                unit="percentunit",
                thresholds=[(None, "green"), (0.3, "orange"), (0.5, "red")],
            ),
            stat(
                "Failed logins/s",
                'job:auth_login_failures:rate5m{job="$job"}',
                unit="reqps",
                thresholds=[(None, "green"), (1, "red")],
            ),
            stat(
                "Lockouts (1h)",
                f"sum(increase(auth_lockouts_total{{{SEL}}}[1h]))",
                thresholds=[(None, "green"), (20, "orange")],
            ),
            stat(
                "Refresh-token reuse (24h)",
                f'sum(increase(auth_token_refreshes_total{{{SEL},result="reuse_detected"}}[24h]))',
                thresholds=[(None, "green"), (1, "red")],
            ),
            stat(
                "Active sessions",
                f"sum(auth_active_sessions{{{SEL}}})",
                description="Sampled by the service; every instance reports the same count.",
                legend="sessions",
            ),
            stat("Users", f"max(auth_users{{{SEL}}})"),
            row("Authentication"),
            ts(
                "Logins by result",
                [target(f"sum by (result) (rate(auth_logins_total{{{SEL}}}[{RI}]))", "{{result}}")],
                unit="reqps",
            ),
            ts(
                "Lockouts",
                [target(f"sum(increase(auth_lockouts_total{{{SEL}}}[{RI}]))", "lockouts")],
                unit="short",
            ),
            ts(
                "Token refreshes by result",
                [
                    target(
                        f"sum by (result) (rate(auth_token_refreshes_total{{{SEL}}}[{RI}]))",
                        "{{result}}",
                    )
                ],
                unit="reqps",
            ),
            ts(
                "Rate-limit rejections by limiter",
                [
                    target(
                        f"sum by (limiter) (rate(auth_rate_limit_rejections_total{{{SEL}}}[{RI}]))",
                        "{{limiter}}",
                    )
                ],
                unit="reqps",
            ),
            ts(
                "Registrations by result",
                [
                    target(
                        f"sum by (result) (rate(auth_registrations_total{{{SEL}}}[{RI}]))",
                        "{{result}}",
                    )
                ],
                unit="reqps",
            ),
            ts(
                "Password resets, verifications, logouts",
                [
                    target(
                        f"sum by (stage) (rate(auth_password_resets_total{{{SEL}}}[{RI}]))",
                        "reset {{stage}}",
                        ref="A",
                    ),
                    target(
                        f"sum by (result) (rate(auth_email_verifications_total{{{SEL}}}[{RI}]))",
                        "verification {{result}}",
                        ref="B",
                    ),
                    target(f"sum(rate(auth_logouts_total{{{SEL}}}[{RI}]))", "logout", ref="C"),
                ],
                unit="reqps",
            ),
            row("Cryptography cost"),
            ts(
                "Password hashing duration",
                [
                    target(
                        q(0.5, "auth_password_hash_duration_seconds", "operation, "),
                        "p50 {{operation}}",
                        ref="A",
                    ),
                    target(
                        q(0.99, "auth_password_hash_duration_seconds", "operation, "),
                        "p99 {{operation}}",
                        ref="B",
                    ),
                ],
                unit="s",
                description="Includes the wait for the bounded hashing pool.",
            ),
            ts(
                "Token signing duration",
                [
                    target(q(0.5, "auth_token_sign_duration_seconds", ""), "p50", ref="A"),
                    target(q(0.99, "auth_token_sign_duration_seconds", ""), "p99", ref="B"),
                ],
                unit="s",
            ),
            row("Audit log"),
            panel(
                "logs",
                "Audit events (Loki)",
                [
                    {
                        "datasource": LOKI,
                        "refId": "A",
                        "expr": '{service="auth-service", log_type="audit"} | json',
                    }
                ],
                w=24,
                h=10,
                datasource=LOKI,
                options={
                    "showTime": True,
                    "wrapLogMessage": True,
                    "sortOrder": "Descending",
                    "enableLogDetails": True,
                    "dedupStrategy": "none",
                },
            ),
        ],
    )


def dependencies() -> dict[str, Any]:
    return dashboard(
        "auth-dependencies",
        "auth-service / Dependencies & health",
        "Database pool and queries, Redis, mail, health checks, readiness and configuration.",
        [
            row("Health"),
            panel(
                "state-timeline",
                "Health checks",
                [target(f"auth_health_check_status{{{SEL}}}", "{{instance}} {{check}}")],
                w=16,
                h=9,
                mappings=HEALTH_MAPPINGS,
                minimum=0,
                maximum=1,
                thresholds=[(None, "red"), (0.5, "orange"), (1, "green")],
            ),
            panel(
                "state-timeline",
                "Ready",
                [target(f"auth_ready{{{SEL}}}", "{{instance}}")],
                w=8,
                h=9,
                mappings=READY_MAPPINGS,
                thresholds=[(None, "red"), (1, "green")],
            ),
            ts(
                "Health check duration (p99)",
                [target(q(0.99, "auth_health_check_duration_seconds", "check, "), "{{check}}")],
                unit="s",
            ),
            ts(
                "TLS certificate expiry",
                [
                    target(
                        f"(min by (host) (auth_tls_certificate_expiry_timestamp_seconds{{{SEL}}})"
                        " - time()) / 86400",
                        "{{host}}",
                    )
                ],
                unit="d",
                thresholds=[(None, "red"), (3, "orange"), (14, "green")],
                custom={"thresholdsStyle": {"mode": "line"}},
            ),
            row("Database"),
            ts(
                "Connection pool",
                targets(
                    (f"sum(auth_db_pool_size{{{SEL}}})", "size"),
                    (f"sum(auth_db_pool_checked_out{{{SEL}}})", "checked out"),
                    (f"sum(auth_db_pool_overflow{{{SEL}}})", "overflow"),
                ),
            ),
            ts(
                "Pool utilisation by instance",
                [
                    target(
                        f"sum by (instance) (auth_db_pool_checked_out{{{SEL}}}) / "
                        f"sum by (instance) (auth_db_pool_size{{{SEL}}})",
                        "{{instance}}",
                    )
                ],
                unit="percentunit",
                minimum=0,
            ),
            ts(
                "Query duration",
                [
                    target(q(0.5, "auth_db_query_duration_seconds", ""), "p50", ref="A"),
                    target(q(0.99, "auth_db_query_duration_seconds", ""), "p99", ref="B"),
                ],
                unit="s",
            ),
            ts(
                "Queries/s",
                [
                    target(
                        f"sum(rate(auth_db_query_duration_seconds_count{{{SEL}}}[{RI}]))", "queries"
                    )
                ],
                unit="ops",
            ),
            row("Redis, mail, alerting"),
            ts(
                "Redis command errors",
                [
                    target(
                        f"sum by (instance) (rate(auth_redis_errors_total{{{SEL}}}[{RI}]))",
                        "{{instance}}",
                    ),
                    # 0 while a worker's invalidation subscription is lost (ADR 0430).
                    target(
                        f"min by (instance) (auth_invalidation_bus_up{{{SEL}}})",
                        "{{instance}} invalidation bus up",
                    ),
                ],
                unit="ops",
                w=8,
            ),
            ts(
                "Mail",
                targets(
                    (f"sum(rate(auth_mail_sent_total{{{SEL}}}[{RI}]))", "sent"),
                    (f"sum(rate(auth_mail_failed_total{{{SEL}}}[{RI}]))", "failed"),
                ),
                unit="ops",
                w=8,
            ),
            ts(
                "Health alert deliveries",
                [
                    target(
                        "sum by (channel, result) "
                        f"(rate(auth_alert_deliveries_total{{{SEL}}}[{RI}]))",
                        "{{channel}} {{result}}",
                    )
                ],
                unit="ops",
                w=8,
            ),
            row("Jobs (durable queue: mail, webhooks)"),
            ts(
                "Job attempts by outcome",
                [
                    target(
                        f"sum by (kind, outcome) (rate(auth_job_runs_total{{{SEL}}}[{RI}]))",
                        "{{kind}} {{outcome}}",
                    )
                ],
                unit="ops",
                w=6,
            ),
            ts(
                "Job attempt duration p99",
                [target(q(0.99, "auth_job_duration_seconds", "kind, "), "{{kind}}")],
                unit="s",
                w=6,
            ),
            # Sampled from the shared table by every process: max, never sum, across them.
            ts(
                "Jobs waiting, running, dead",
                [
                    target(
                        f"max by (kind, state) (auth_job_queue_depth{{{SEL}}})",
                        "{{kind}} {{state}}",
                    )
                ],
                w=6,
            ),
            ts(
                "Oldest job age",
                [
                    target(
                        f"max by (kind) (auth_job_oldest_age_seconds{{{SEL}}})",
                        "{{kind}}",
                    )
                ],
                unit="s",
                w=6,
            ),
            row("Housekeeping (docs/operations/housekeeping.md)"),
            ts(
                "Rows purged by table",
                [
                    target(
                        "sum by (table) "
                        f"(increase(auth_housekeeping_rows_purged_total{{{SEL}}}[{RI}]))",
                        "{{table}}",
                    )
                ],
                w=12,
            ),
            # Sampled after every run by the process that ran it: max across processes.
            ts(
                "Table rows",
                [target(f"max by (table) (auth_housekeeping_table_rows{{{SEL}}})", "{{table}}")],
                w=12,
            ),
            row("Configuration and scrape"),
            ts(
                "Config reloads",
                [
                    target(
                        f"sum by (result) (increase(auth_config_reloads_total{{{SEL}}}[{RI}]))",
                        "{{result}}",
                    )
                ],
                w=8,
            ),
            panel(
                "table",
                "Build and configuration",
                targets(
                    (f"max by (instance, version, commit, python) (auth_build_info{{{SEL}}})", ""),
                    (f"max by (instance, hash) (auth_config_info{{{SEL}}})", ""),
                ),
                w=8,
                options={"showHeader": True},
            ),
            ts(
                "Scrape duration",
                [target(f"scrape_duration_seconds{{{SEL}}}", "{{instance}}")],
                unit="s",
                w=8,
            ),
        ],
    )


def backups_dr() -> dict[str, Any]:
    bsel = 'job="$job"'
    return dashboard(
        "auth-backups-dr",
        "auth-service / Backups & DR",
        "Backup freshness, size and duration, WAL archiving, replication lag and the "
        "automatic-failover observers.",
        [
            row("Recovery point"),
            stat(
                "Age of last backup",
                f"time() - max by (kind) (auth_backup_last_success_timestamp_seconds{{{bsel}}})",
                w=8,
                h=5,
                unit="s",
                legend="{{kind}}",
                thresholds=[(None, "green"), (26 * 3600, "orange"), (50 * 3600, "red")],
            ),
            stat(
                "WAL archive lag",
                f"max(auth_wal_archive_lag_seconds{{{bsel}}})",
                w=4,
                h=5,
                unit="s",
                thresholds=[(None, "green"), (600, "red")],
            ),
            stat(
                "Age of last restore verification",
                f"time() - max(auth_backup_last_verification_timestamp_seconds{{{bsel}}})",
                w=4,
                h=5,
                unit="s",
                thresholds=[(None, "green"), (8 * 86400, "orange")],
            ),
            stat(
                "Replication lag",
                f"max(auth_replication_lag_seconds{{{bsel}}})",
                w=4,
                h=5,
                unit="s",
                thresholds=[(None, "green"), (30, "orange"), (300, "red")],
            ),
            stat(
                "Backup failures (24h)",
                f"sum(increase(auth_backup_failures_total{{{bsel}}}[24h]))",
                w=4,
                h=5,
                thresholds=[(None, "green"), (1, "red")],
            ),
            row("Backups"),
            ts(
                "Backup size by kind",
                [target(f"max by (kind) (auth_backup_bytes{{{bsel}}})", "{{kind}}")],
                unit="bytes",
                w=8,
            ),
            ts(
                "Backup duration by kind",
                [target(f"max by (kind) (auth_backup_duration_seconds{{{bsel}}})", "{{kind}}")],
                unit="s",
                w=8,
            ),
            ts(
                "Backup failures by kind",
                [
                    target(
                        f"sum by (kind) (increase(auth_backup_failures_total{{{bsel}}}[{RI}]))",
                        "{{kind}}",
                    )
                ],
                w=8,
            ),
            row("Replication and WAL"),
            ts(
                "Replication lag",
                [
                    target(f"max(auth_replication_lag_seconds{{{bsel}}})", "seconds", ref="A"),
                ],
                unit="s",
                thresholds=[(None, "green"), (30, "orange"), (300, "red")],
                custom={"thresholdsStyle": {"mode": "line"}},
            ),
            ts(
                "Replication lag (bytes)",
                [
                    target(f"max(auth_replication_lag_bytes{{{bsel}}})", "bytes", ref="A"),
                ],
                unit="bytes",
            ),
            ts(
                "WAL archive lag",
                [
                    target(f"max(auth_wal_archive_lag_seconds{{{bsel}}})", "lag", ref="A"),
                ],
                unit="s",
                w=24,
                thresholds=[(None, "green"), (600, "red")],
                custom={"thresholdsStyle": {"mode": "line"}},
            ),
            row("Automatic failover (dr watch observers)"),
            stat(
                "Automatic failovers (30d)",
                f"sum(increase(auth_dr_auto_failovers_total{{{bsel}}}[30d]))",
                w=6,
                h=8,
                description="Failovers run by an observer; any needs a look and a rearm",
                thresholds=[(None, "green"), (1, "red")],
            ),
            ts(
                "Observers reaching the primary",
                targets(
                    (f"sum(auth_dr_observer_primary_reachable{{{bsel}}})", "reaching"),
                    (f"count(auth_dr_observer_primary_reachable{{{bsel}}})", "observers"),
                    (f"sum(auth_dr_auto_enabled{{{bsel}}})", "may fail over"),
                ),
                w=9,
                description="Reaching below observers: some observer is cut off from region A. "
                "May fail over: observers with dr.auto.enabled (0: observing only)",
            ),
            ts(
                "Fresh observations seen per observer",
                [
                    target(
                        f"max by (observer) (auth_dr_auto_observers_fresh{{{bsel}}})",
                        "{{observer}}",
                    ),
                    target(f"max(auth_dr_auto_quorum{{{bsel}}})", "quorum", ref="B"),
                ],
                w=9,
                description="Below dr.auto.quorum, automatic failover cannot happen",
            ),
        ],
    )


DASHBOARDS = {
    "overview.json": overview,
    "security.json": security,
    "dependencies.json": dependencies,
    "backups-dr.json": backups_dr,
}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args()
    stale = []
    for name, text in render().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)}; run {sys.argv[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
