"""The metric contract (metric_names.py) the rules and dashboards are written against is what
the service really exposes: the families it defines, with their types and labels, and the
label values its /metrics endpoint shows."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

import auth_service
from tests.monitoring.metric_names import CONTRACT, LABEL_VALUES
from tests.support.api import SQLITE_ONLY, Api
from tests.support.reload import dump, runtime_of

# Values that depend on traffic rather than on the code: the service answers 2xx and 4xx in
# this test, never 1xx, and 3xx or 5xx only by accident.
SEEN_AT_LEAST: frozenset[tuple[str, str]] = frozenset(
    {
        ("auth_http_requests_total", "status_class"),
        # Each outcome is counted by a test of its own (tests/unit/jobs/test_worker.py), which
        # may run after this one: a drained job ("released") is not traffic this test makes.
        ("auth_job_runs_total", "outcome"),
    }
)


def service_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every metric family the service defines, as exposed: name -> (type, label names).

    Found by importing every module of the package, wherever a metric is defined.
    """
    for module in pkgutil.walk_packages(auth_service.__path__, "auth_service."):
        importlib.import_module(module.name)
    found = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("auth_service.") or module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                kind = value._type
                exposed = f"{value._name}_total" if kind == "counter" else value._name
                found[exposed] = (kind, tuple(value._labelnames))
    return found


def test_the_contract_lists_every_metric_of_the_service_as_defined() -> None:
    service = service_metrics()
    contract = {n: (m.type, m.labels) for n, m in CONTRACT.items()}
    assert len(service) >= 40, "the service's metrics were not found"
    assert sorted(set(service) - set(contract)) == [], "defined, but not in the contract"
    assert sorted(set(contract) - set(service)) == [], "in the contract, not defined"
    differ = {
        n: (service[n], contract[n])
        for n in service
        if (service[n][0], set(service[n][1])) != (contract[n][0], set(contract[n][1]))
    }
    assert differ == {}, "type or labels differ (service, contract)"


def _label_values(exposition: str) -> dict[tuple[str, str], set[str]]:
    values: dict[tuple[str, str], set[str]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            for label, value in sample.labels.items():
                values.setdefault((sample.name, label), set()).add(value)
    return values


def _exposed(name: str) -> str:
    """The series a label value shows on: histograms by their _count."""
    return f"{name}_count" if CONTRACT[name].type == "histogram" else name


async def _reload(api: Api, tmp_path: Path, data: Any) -> str:
    path = tmp_path / "auth.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return (await runtime_of(api, path).reloader.reload("test")).result


@SQLITE_ONLY
async def test_the_service_emits_the_label_values_the_rules_match(api: Api, tmp_path: Path) -> None:
    # Traffic that moves the counters whose values are not all there from the start.
    user = await api.user()
    assert (await api.login(user["email"], "not-the-password")).status_code == 401
    settings = dump(api.services.settings)
    assert await _reload(api, tmp_path, settings) == "unchanged"
    settings["lockout"]["threshold"] = 7
    assert await _reload(api, tmp_path, settings) == "applied"
    assert await _reload(api, tmp_path, "lockout: {threshold: -1}\n") == "error"

    exposition = (await api.management.get("/metrics")).text
    seen = _label_values(exposition)
    problems = {}
    for (name, label), expected in LABEL_VALUES.items():
        emitted = seen.get((_exposed(name), label), set())
        # The whole session's values are in this process's registry: none may be unknown.
        unknown = emitted - expected
        missing = set() if (name, label) in SEEN_AT_LEAST else expected - emitted
        if unknown or missing:
            problems[f"{name}{{{label}}}"] = {
                "emitted, not in the contract": sorted(unknown),
                "in the contract, never emitted": sorted(missing),
            }
    assert problems == {}
