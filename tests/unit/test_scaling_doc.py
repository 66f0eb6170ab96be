"""docs/scaling.md's per-request costs and sizing figures are the committed benchmark report's
figures, recomputed here: a new report or an edited number that disagrees fails."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "scaling.md").read_text()
REPORT_FILE = ROOT / "bench" / "results" / "2026-12-06-perf" / "run3" / "results.json"
REPORT = json.loads(REPORT_FILE.read_text())


def _row(label: str) -> list[str]:
    """The cells of the first table row whose first cell starts with ``label``."""
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].startswith(label):
            return cells
    raise AssertionError(f"no row {label!r} in docs/scaling.md")


def _per_request(scenario: str) -> tuple[float, float, float]:
    s = REPORT["scenarios"][scenario]
    ok = sum(int(n) for load in s["loads"] for code, n in load["status"].items() if code < "300")
    return (
        1000 * s["service_cpu_s"] / ok,
        1000 * s["database_cpu_s"] / ok,
        1000 * s["redis_cpu_s"] / ok,
    )


@pytest.mark.parametrize(
    ("label", "scenario"),
    [
        ("sign-in", "login"),
        ("refresh with rotation", "refresh"),
        ("registration", "register"),
    ],
)
def test_costs_per_request_are_the_reports(label: str, scenario: str) -> None:
    service, database, redis = _per_request(scenario)
    cells = _row(label)
    assert float(cells[1]) == pytest.approx(service, abs=0.06)
    assert float(cells[2]) == pytest.approx(database, abs=0.01)
    assert float(cells[3]) == pytest.approx(redis, abs=0.01)


@pytest.mark.parametrize(
    ("label", "scenario"),
    [("password sign-ins/s", "login"), ("refreshes/s", "refresh"), ("bearer token", "me")],
)
def test_sizing_per_vcpu_is_the_reports_rate_per_cpu_second(label: str, scenario: str) -> None:
    figure = float(re.sub(r"[^\d.]", "", _row(label)[1]))
    assert figure == pytest.approx(
        REPORT["scenarios"][scenario]["requests_per_service_cpu_s"], abs=0.5
    )


def test_memory_per_replica_is_the_sum_of_the_workers() -> None:
    cells = _row("memory per replica")
    start, end = (round(sum(REPORT[k].values())) for k in ("rss_mib_start", "rss_mib_end"))
    assert f"{start} MiB at start" in cells[1]
    assert f"{end} MiB after" in cells[1]
