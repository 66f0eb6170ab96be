"""Medians of several ``make bench`` runs, with each run's ratios taken within that run.

``python bench/medians.py bench/results/<dir>/run1 bench/results/<dir>/run2 ...`` prints a
Markdown summary: per scenario the req/s, requests per service CPU-second, p50 and p99 of each
run and their median, then the ratios to the raw ASGI ceiling and to the FastAPI baseline
computed inside each run (the only comparison that holds on a shared machine) and their median.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

RATIO_TARGETS = {"jwks": 0.70, "discovery": 0.70, "me": 0.25}


def _load(run: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = run["loads"][0]
    return first


def _entries(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {f"baseline_{k}": v for k, v in result.get("baselines", {}).items() if k != "argon2"}
    out.update({k: v for k, v in result["scenarios"].items() if isinstance(v, dict)})
    return out


def _fmt(values: list[float], digits: int = 0) -> str:
    shown = ", ".join(f"{v:,.{digits}f}" for v in values)
    return f"{shown} (**{statistics.median(values):,.{digits}f}**)"


def summary(dirs: list[Path]) -> str:
    runs = [json.loads((d / "results.json").read_text()) for d in dirs]
    names = [n for n in _entries(runs[0]) if all(n in _entries(r) for r in runs)]
    lines = [
        f"Runs: {', '.join(str(d) for d in dirs)}; started "
        + ", ".join(r["started_at"] for r in runs)
        + "; load average before each: "
        + ", ".join("/".join(f"{x:.1f}" for x in r["machine"]["loadavg_before"]) for r in runs),
        "",
        "| scenario | req/s per run (median) | per service CPU-s | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        items = [_entries(r)[name] for r in runs]
        loads = [_load(x) for x in items]
        lines.append(
            f"| {name} | {_fmt([x['ok_per_s'] for x in loads])} "
            f"| {_fmt([x['requests_per_service_cpu_s'] for x in items])} "
            f"| {_fmt([x['latency_ms']['percentiles']['50'] for x in loads], 1)} "
            f"| {_fmt([x['latency_ms']['percentiles']['99'] for x in loads], 1)} |"
        )
    lines += ["", "| ratio (within each run) | per run (median) | target |", "|---|---|---|"]
    for name in ("jwks", "discovery", "me", "refresh"):
        if name not in names:
            continue
        for base in ("raw", "trivial"):
            key = f"baseline_{base}"
            if key not in names:
                continue
            rps = [
                _load(_entries(r)[name])["ok_per_s"] / _load(_entries(r)[key])["ok_per_s"]
                for r in runs
            ]
            cpu = [
                _entries(r)[name]["requests_per_service_cpu_s"]
                / _entries(r)[key]["requests_per_service_cpu_s"]
                for r in runs
            ]
            target = RATIO_TARGETS.get(name) if base == "raw" else None
            goal = f"≥ {target}" if target else ""
            lines.append(f"| {name} / {base}, throughput | {_fmt(rps, 3)} | {goal} |")
            lines.append(f"| {name} / {base}, per service CPU-s | {_fmt(cpu, 3)} | |")
    for name, when in (
        ("me", "cold start"),
        ("me_again", "steady state"),
        ("me_fresh", "warm process, unseen sessions"),
    ):
        if name not in names:
            continue
        tails = [
            _load(_entries(r)[name])["latency_ms"]["percentiles"]["99"]
            / _load(_entries(r)[name])["latency_ms"]["percentiles"]["50"]
            for r in runs
        ]
        lines.append(f"| {name} p99 / p50 at 64 connections ({when}) | {_fmt(tails, 1)} | ≤ 5 |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(summary([Path(a) for a in sys.argv[1:]]), end="")
