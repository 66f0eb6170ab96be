#!/usr/bin/env python3
"""Copy the monitoring/ files the Helm chart ships into helm/auth-service/files/.

monitoring/ is the single source of truth for alert/recording rules and Grafana dashboards
(Compose mounts it directly). Helm cannot package symlinks or read outside the chart, so the
chart carries copies, made by `make helm-sync`; `--check` (run by `make deploy-check`) fails
when a copy is missing, stale or orphaned.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART_FILES = ROOT / "helm" / "auth-service" / "files"

# (source directory, glob, destination directory inside files/)
MAPPINGS: list[tuple[Path, str, Path]] = [
    (ROOT / "monitoring" / "prometheus" / "rules", "*.yml", CHART_FILES / "prometheus" / "rules"),
    (
        ROOT / "monitoring" / "grafana" / "dashboards",
        "*.json",
        CHART_FILES / "grafana" / "dashboards",
    ),
]


def plan() -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Return (copies to make as (src, dst), orphaned destination files)."""
    copies: list[tuple[Path, Path]] = []
    orphans: list[Path] = []
    for src_dir, pattern, dst_dir in MAPPINGS:
        sources = sorted(src_dir.glob(pattern)) if src_dir.is_dir() else []
        names = {s.name for s in sources}
        copies += [(s, dst_dir / s.name) for s in sources]
        if dst_dir.is_dir():
            orphans += [d for d in sorted(dst_dir.glob(pattern)) if d.name not in names]
    return copies, orphans


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
    args = parser.parse_args()
    copies, orphans = plan()
    stale = [(s, d) for s, d in copies if not d.exists() or not filecmp.cmp(s, d, shallow=False)]
    if args.check:
        for s, d in stale:
            print(
                f"drift: {d.relative_to(ROOT)} differs from {s.relative_to(ROOT)}", file=sys.stderr
            )
        for d in orphans:
            print(f"drift: {d.relative_to(ROOT)} has no source in monitoring/", file=sys.stderr)
        if stale or orphans:
            print("run `make helm-sync` and commit the result", file=sys.stderr)
            return 1
        print(f"helm-sync: {len(copies)} monitoring files in the chart are up to date")
        return 0
    for s, d in stale:
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s, d)
        print(f"copied {s.relative_to(ROOT)} -> {d.relative_to(ROOT)}")
    for d in orphans:
        d.unlink()
        print(f"removed {d.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
