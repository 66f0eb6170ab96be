"""Shares of a py-spy flame graph (``BENCH_PROFILE=svg``) by library.

``python bench/flame_shares.py <profile.svg> ...`` attributes each frame's own samples to the
deepest frame on its stack that belongs to a known library (or to the service's own code),
and prints the shares of the sampled, non-idle time. Beware: py-spy without ``--native``
counts a thread as busy while native code sleeps under a Python frame: the config watcher
(watchfiles in an AnyIO thread) and uvloop's poll inside ``Runner.run`` are mostly such
time (``/proc/<pid>/task/*/stat`` shows the watcher's thread spending no CPU).
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

CATEGORIES = [
    ("config watcher thread (idle in Rust, counted busy)", r"anyio/_backends/_asyncio.py:1124"),
    ("argon2 (the hash)", r"argon2/|PasswordHasher\._check|_argon2_check"),
    (
        "hash hand-off (executor, futures, pipes)",
        r"concurrent/futures|multiprocessing/|_run_in_process",
    ),
    (
        "tracing (OpenTelemetry spans, OTLP encoding and export)",
        # py-spy names OpenTelemetry's files without the namespace package (trace/__init__.py)
        r"opentelemetry/|_shared_internal/|trace_encoder/|trace_exporter/|common/http\.py|"
        r"context/__init__\.py|contextvars_context\.py|trace/(__init__|span|sampling|id_generator)"
        r"\.py|resources/__init__\.py|google/protobuf|urllib3/|requests/|transport/_requests|"
        r"^_traced_|tracing\.py",
    ),
    ("SQLAlchemy", r"sqlalchemy/"),
    ("asyncpg", r"asyncpg/"),
    ("Redis + limits", r"redis/|limits/"),
    ("JWT / cryptography", r"jwt/|cryptography/"),
    ("pydantic", r"pydantic"),
    ("FastAPI + Starlette", r"fastapi/|starlette/"),
    ("uvicorn / httptools", r"uvicorn/protocols|httptools"),
    ("logging / metrics", r"structlog|logging/|prometheus"),
    ("own code (auth_service)", r"auth_service/"),
    ("asyncio / uvloop (incl. its poll)", r"asyncio/|uvloop|selectors"),
]
Frame = tuple[str, float, int, float]  # title, x %, y, width %
ROW = 16  # py-spy's frame height: a child is one row below its parent


def frames(path: str) -> list[Frame]:
    svg = Path(path).read_text(encoding="utf-8")
    found = re.findall(
        r'<g><title>(.*?)</title><rect x="([\d.]+)%" y="(\d+)" width="([\d.]+)%"', svg
    )
    return [(html.unescape(t), float(x), int(y), float(w)) for t, x, y, w in found]


def category(title: str) -> str | None:
    return next((name for name, pattern in CATEGORIES if re.search(pattern, title)), None)


def shares(path: str) -> dict[str, float]:
    rows: dict[int, list[Frame]] = {}
    for frame in frames(path):
        rows.setdefault(frame[2], []).append(frame)

    def within(parent: Frame, child: Frame) -> bool:
        return parent[1] - 1e-6 <= child[1] < parent[1] + parent[3] - 1e-6

    totals: dict[str, float] = {}
    for row in rows.values():
        for frame in row:
            own = frame[3] - sum(c[3] for c in rows.get(frame[2] + ROW, []) if within(frame, c))
            if own <= 0:
                continue
            node: Frame | None = frame
            name = None
            while node is not None and (name := category(node[0])) is None:
                node = next((p for p in rows.get(node[2] - ROW, []) if within(p, node)), None)
            key = name or "other"
            totals[key] = totals.get(key, 0.0) + own
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def main(paths: list[str]) -> None:
    for path in paths:
        print(path)
        for name, share in shares(path).items():
            if share >= 0.1:
                print(f"  {share:5.1f} %  {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
