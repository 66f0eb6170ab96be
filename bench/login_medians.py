"""Issue #19's login targets from several ``bench/run.py`` runs (``login``, ``me_during_login``).

``python bench/login_medians.py <run dir> ...`` prints, per run and as medians, each ratio
taken inside its own run: logins (2xx only) per service CPU-second over the pure argon2id
verifies per CPU-second of the same run's baseline (and the same in wall-clock rates), and
``me``'s p50/p99 while 32 connections of logins saturate the hashing pool.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def row(result: dict[str, Any]) -> dict[str, float]:
    argon2 = result["baselines"]["argon2"]
    login = result["scenarios"]["login"]
    flood = result["scenarios"]["me_during_login"]
    ok = login["loads"][0]["ok_per_s"] * login["wall_s"]
    me, logins = flood["loads"]
    return {
        "argon2 verifies/s": argon2["verifies_per_s"],
        "login ok/s": login["loads"][0]["ok_per_s"],
        "login ok per service CPU-s": ok / login["service_cpu_s"],
        "per CPU-s ratio": ok / login["service_cpu_s"] / argon2["verifies_per_cpu_s"],
        "wall-clock ratio": login["loads"][0]["ok_per_s"] / argon2["verifies_per_s"],
        "DB xacts per login": login["db_transactions_per_request"],
        "me p50 ms (flood)": me["latency_ms"]["percentiles"]["50"],
        "me p99 ms (flood)": me["latency_ms"]["percentiles"]["99"],
        "me req/s (flood)": me["throughput"],
        "flood logins ok/s": logins["ok_per_s"],
        "load before": result["machine"]["loadavg_before"][0],
        "load after": result["machine"]["loadavg_after"][0],
    }


def main(dirs: list[str]) -> None:
    rows = {d: row(json.loads((Path(d) / "results.json").read_text())) for d in dirs}
    names = list(next(iter(rows.values())))
    print("| figure | " + " | ".join(Path(d).name for d in dirs) + " | median |")
    print("|---|" + "---:|" * (len(dirs) + 1))
    for name in names:
        values = [r[name] for r in rows.values()]
        cells = " | ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {cells} | **{statistics.median(values):.2f}** |")


if __name__ == "__main__":
    main(sys.argv[1:])
