"""Just enough PromQL reading for the monitoring tests: which metrics and label matchers an
expression names, and how Grafana's variables expand.

There is no PromQL parser CLI in promtool, so this is a careful lexer, not a parser: string
literals, durations/ranges, grouping clauses (`by (...)`, `on (...)`, ...) and function calls
are removed, and the identifiers that remain are metric names. The real-Prometheus test
(test_dashboards_prometheus.py) covers what a lexer cannot: that each query evaluates.
"""

from __future__ import annotations

import re
from typing import NamedTuple

KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
        "atan2",
        "start",
        "end",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_BRACES = re.compile(r"\{[^}]*\}")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENT = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(\s*\()?")
_SELECTOR = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


class Matcher(NamedTuple):
    metric: str | None
    label: str
    op: str
    value: str


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords and labels excluded)."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _VARIABLE.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def matchers(expr: str) -> list[Matcher]:
    """Label matchers of every selector, with the metric they apply to (None for `{...}`)."""
    found = []
    for sel in _SELECTOR.finditer(expr):
        metric, body = sel.group(1), sel.group(2)
        if metric and metric.lower() in KEYWORDS | {"by", "without"}:
            metric = None
        for m in _MATCHER.finditer(body):
            label, op, value = m.groups()
            if label == "__name__":
                continue
            found.append(Matcher(metric, label, op, value))
    return found


def grouping_labels(expr: str) -> set[str]:
    """Label names in by/without/on/ignoring/group_* clauses."""
    labels = set()
    for clause in _GROUPING.finditer(_STRING.sub('""', expr)):
        inner = clause.group(0)[clause.group(0).index("(") + 1 : -1]
        labels.update(part.strip() for part in inner.split(",") if part.strip())
    return labels


def expand_grafana(expr: str, values: dict[str, str] | None = None) -> str:
    """Replace Grafana variables the way Grafana would before sending a query."""
    builtins = {
        "__rate_interval": "1m",
        "__interval": "15s",
        "__range": "1h",
        "__interval_ms": "15000",
        "__range_s": "3600",
    }
    table = {**builtins, **(values or {})}

    def sub(m: re.Match[str]) -> str:
        name = m.group(0).strip("${}").split(":")[0]
        return table.get(name, ".*")

    return _VARIABLE.sub(sub, expr)
