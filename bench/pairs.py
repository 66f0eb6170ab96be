"""Alternating pairs of ``make bench`` runs (A, B, A, B, ...): service CPU per request of
each scenario in each run, and B's cost over A's within each pair with their median.

``python bench/pairs.py <A1> <B1> <A2> <B2> ...`` (result directories). For a change whose
cost is a few percent, per-request CPU moves ±15 % from one 15-s run to the next on this
machine: only pairs run back to back, and the median of several, say anything.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from medians import _entries  # bench/ is the script's directory


def _per_request_us(run: dict[str, Any]) -> dict[str, float]:
    out = {}
    for name, entry in _entries(run).items():
        rate = entry.get("requests_per_service_cpu_s")
        if rate:
            out[name] = 1e6 / float(rate)
    return out


def main(dirs: list[str]) -> None:
    if len(dirs) < 2 or len(dirs) % 2:
        raise SystemExit("usage: pairs.py A1 B1 [A2 B2 ...] (an even number of run directories)")
    runs = [_per_request_us(json.loads((Path(d) / "results.json").read_text())) for d in dirs]
    pairs = list(zip(runs[::2], runs[1::2], strict=True))
    names = [n for n in runs[0] if all(n in r for r in runs)]
    print("| scenario | A µs per request | B µs per request | B / A - 1 per pair (**median**) |")
    print("|---|---|---|---|")
    for name in names:
        a = [p[0][name] for p in pairs]
        b = [p[1][name] for p in pairs]
        extra = [y / x - 1 for x, y in zip(a, b, strict=True)]
        print(
            f"| {name} | {', '.join(f'{v:.1f}' for v in a)} | {', '.join(f'{v:.1f}' for v in b)}"
            f" | {', '.join(f'{e:+.1%}' for e in extra)} (**{statistics.median(extra):+.1%}**) |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
