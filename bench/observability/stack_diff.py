"""Where one variant's extra CPU per request goes, from the raw py-spy stacks that
``bench/observability/interleaved.py --profile`` records in every slice (added up per
variant in ``OUT/stacks-<variant>.txt.gz``, py-spy's raw format: one stack and its count a
line, which ``flamegraph.pl`` or speedscope also read).

    python -m bench.observability.stack_diff <OUT> off rate0 [--top 30]

For each variant: the samples of all its slices and workers added up, divided by the
requests of those slices, as microseconds of sampled time per request (py-spy's rate, 250 Hz,
includes only threads that were not idle). Each function's inclusive time (the function or
anything it calls: a sample counts once per function however deep the recursion) and self time
(the sample's leaf) per request, side by side, sorted by the difference. Sampling has its own
noise (about the square root of a function's samples): read differences of a few µs on a
request of a few hundred with that in mind.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from collections import Counter
from pathlib import Path

RATE_HZ = 250
# py-spy's raw frames: "function (file.py:line)"; the line number differs within a function.
_LINE = re.compile(r":\d+\)$")


def _frame(raw: str) -> str:
    name = _LINE.sub(")", raw.strip())
    # Shorten site-packages and source paths to the module's own path.
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in name:
            head, _, tail = name.partition("(")
            name = f"{head}({tail.split(marker, 1)[-1]}"
            break
    return name


def load(out: Path, variant: str) -> tuple[Counter[str], Counter[str], int, int]:
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    samples = 0
    with gzip.open(out / f"stacks-{variant}.txt.gz", "rt") as stacks:
        for line in stacks:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [_frame(f) for f in stack.split(";")]
            samples += n
            for name in set(frames):
                inclusive[name] += n
            leaf[frames[-1]] += n
    results = json.loads((out / "results.json").read_text())
    requests = sum(s["requests"] for s in results["variants"][variant]["slices"])
    return inclusive, leaf, samples, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("base")
    parser.add_argument("other")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    a_inc, a_leaf, a_n, a_req = load(args.out, args.base)
    b_inc, b_leaf, b_n, b_req = load(args.out, args.other)
    if not a_req or not b_req or not a_n or not b_n:
        raise SystemExit(f"no stacks or no requests for {args.base} or {args.other} in {args.out}")
    us = 1e6 / RATE_HZ

    def per_request(count: int, requests: int) -> float:
        return count * us / requests

    print(
        f"sampled time per request: {args.base} {per_request(a_n, a_req):.1f} µs "
        f"({a_n} samples, {a_req} requests), {args.other} {per_request(b_n, b_req):.1f} µs "
        f"({b_n} samples, {b_req} requests)\n"
    )
    for title, a, b in (("inclusive", a_inc, b_inc), ("self (leaf)", a_leaf, b_leaf)):
        rows = [(per_request(b[k], b_req) - per_request(a[k], a_req), k) for k in set(a) | set(b)]
        rows.sort(reverse=True)
        print(f"| {title}: function | {args.base} µs | {args.other} µs | difference |")
        print("|---|---|---|---|")
        for diff, name in rows[: args.top]:
            print(
                f"| `{name}` | {per_request(a[name], a_req):.1f} | "
                f"{per_request(b[name], b_req):.1f} | {diff:+.1f} |"
            )
        print()


if __name__ == "__main__":
    main()
