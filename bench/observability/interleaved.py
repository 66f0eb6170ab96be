"""Tracing's cost measured by interleaving: one server per variant, all running at once, the
same load given to each in turn in short slices.

``make bench``-style pairs (``bench/pairs.py``) compare runs minutes apart, and on a shared VM
the same code's per-request CPU moves by a third between such runs. Here the variants differ
by their configuration only, share the database, Redis and the machine, and their slices are
seconds apart, in an order rotated every round; a variant's cost is read from the CPU its own
processes spent in its own slices (``/proc/<pid>/task/*/schedstat``, nanoseconds), and each
round gives one ratio against the untraced variant measured beside it.

Variants: ``off`` (no ``OTEL_*``), ``rate0`` (tracing configured, the sampler's ratio 0:
every request takes the head decision and none is sampled: the fixed cost), ``rate10`` (the
issue's 10 %) and ``rate100`` (every request sampled: the cost of a sampled request); and,
asked for by name, ``rate100_held`` (sampled, the spans held in memory, not exported during
the run: the event loop's share of a sampled span without the export thread beside it). The
spans go to a local OTLP sink that accepts and drops them (``bench.observability.sink``, a
process of its own, not counted). With a linear model, ``rate10 ≈ rate0 + 0.1 * (rate100 -
rate0)``; the report prints both sides.

    BENCH_DB=auth_bench_lead BENCH_REDIS_DB=12 BENCH_PORT=28080 BENCH_MANAGEMENT_PORT=29090 \
      BENCH_SMTP_PORT=28025 BENCH_USERS=20000 \
      .venv/bin/python -m bench.observability.interleaved --scenario refresh --rounds 10

Knobs: ``--scenario`` (refresh or me), ``--rounds`` (8), ``--slice`` (seconds of load per
slice, 4), ``--variants`` (comma list, all four), ``--out`` (a directory for results.json
and report.md), ``--profile`` (py-spy on the loaded variant's workers in every slice; where
one variant's extra CPU goes: ``python -m bench.observability.stack_diff OUT off rate0``;
more py-spy options in BENCH_PROFILE_ARGS, e.g. ``--gil`` for the samples that hold the GIL
only; ``--native`` gave no stacks on this machine).
The BENCH_* variables are ``bench/run.py``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import run as harness

SINK_PORT = 24318
TRACING = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{SINK_PORT}",
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
}
VARIANTS: dict[str, dict[str, str]] = {
    "off": {},
    "rate0": {**TRACING, "OTEL_TRACES_SAMPLER_ARG": "0"},
    "rate10": {**TRACING, "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    "rate100": {**TRACING, "OTEL_TRACES_SAMPLER_ARG": "1"},
    # An experiment, not a setup: every request sampled, but the batch processor holds the
    # spans (a queue and a batch larger than the run, a delay longer than it), so its thread
    # exports nothing during the slices: what a sampled span costs the event loop without
    # an export thread competing with it for the GIL.
    "rate100_held": {
        **TRACING,
        "OTEL_TRACES_SAMPLER_ARG": "1",
        "OTEL_BSP_MAX_QUEUE_SIZE": "4000000",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4000000",
        "OTEL_BSP_SCHEDULE_DELAY": "3600000",
    },
}
# wrk's shape of each scenario, as in bench/run.py: (script, connections, threads, sessions)
SCENARIOS = {
    "refresh": ("refresh.lua", 16, 16, 16),
    "me": ("me.lua", 64, 2, 64),
}


def threads_ns(pid: int) -> dict[str, int]:
    """Nanoseconds on a CPU of ``pid``'s main thread (a serving worker's event loop) and of
    its other threads added up (the SDK's export thread, thread pools): Python does not name
    its threads for the kernel, so ``comm`` cannot tell them apart."""
    out: dict[str, int] = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                ns = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        name = "main thread" if task == str(pid) else "other threads"
        out[name] = out.get(name, 0) + ns
    return out


def group_ns(pids: list[int]) -> dict[int, dict[str, int]]:
    return {p: threads_ns(p) for p in pids}


def spent_by_thread(before: dict[int, dict[str, int]], pids_now: list[int]) -> dict[str, float]:
    """CPU seconds since ``before`` by thread (main or other), over the processes now alive."""
    out: dict[str, float] = {}
    for pid, now in group_ns(pids_now).items():
        then = before.get(pid, {})
        for name, ns in now.items():
            out[name] = out.get(name, 0.0) + (ns - then.get(name, 0)) / 1e9
    return out


def spent_s(before: dict[int, dict[str, int]], pids_now: list[int]) -> float:
    return sum(spent_by_thread(before, pids_now).values())


class Variant:
    def __init__(self, name: str, index: int, env: dict[str, str], work: Path) -> None:
        self.name = name
        self.port = harness.CONFIG.port + 10 * index
        self.management_port = harness.CONFIG.management_port + 10 * index
        self.base = f"http://127.0.0.1:{self.port}"
        data = work / f"data-{name}"
        data.mkdir()
        self.env = {**env, **VARIANTS[name], "AUTH_DATA_DIR": str(data)}
        self.server: harness.Server | None = None
        self.work = work
        self.slices: list[dict[str, Any]] = []

    def start(self) -> None:
        self.server = harness.Server(
            self.name,
            [
                str(harness.BIN / "auth-service"),
                "serve",
                "--workers",
                str(harness.CONFIG.workers),
                "--port",
                str(self.port),
                "--management-port",
                str(self.management_port),
            ],
            self.env,
            self.work / f"service-{self.name}.log",
        )

    def pids(self) -> list[int]:
        assert self.server is not None
        return self.server.pids()


def sessions(variant: Variant, count: int, offset: int, name: str) -> dict[str, str]:
    pairs = harness.login_many(variant.base, count, offset)
    return harness.token_files(variant.work, name, pairs)


def profilers(variant: Variant, seconds: int, round_no: int, out: Path) -> list[Any]:
    """py-spy on each serving worker of ``variant`` for the slice: raw stacks, one file per
    worker and round (``merge_stacks`` adds them up per variant); BENCH_PROFILE_ARGS as in
    ``bench/run.py``."""
    assert variant.server is not None
    out.mkdir(parents=True, exist_ok=True)
    return [
        harness.py_spy(pid, seconds, 250, "raw", out / f"{variant.name}-{round_no}-{pid}.txt")
        for pid in variant.server.workers()
    ]


def merge_stacks(out: Path, names: list[str]) -> None:
    """The slices' raw stacks added up per variant (``OUT/stacks-<variant>.txt.gz``, the most
    frequent first); the per-slice files are removed."""
    for name in names:
        counts: Counter[str] = Counter()
        for path in sorted((out / "stacks").glob(f"{name}-*-*.txt")):
            for line in path.read_text().splitlines():
                stack, _, n = line.rpartition(" ")
                if stack and n.isdigit():
                    counts[stack] += int(n)
            path.unlink()
        with gzip.open(out / f"stacks-{name}.txt.gz", "wt") as merged:
            merged.writelines(f"{stack} {n}\n" for stack, n in counts.most_common())
    with contextlib.suppress(OSError):
        (out / "stacks").rmdir()


def one_slice(
    variant: Variant,
    others: list[Variant],
    spec: harness.Wrk,
    round_no: int,
    profile: Path | None = None,
) -> dict[str, Any]:
    everyone = [variant, *others]
    spies = [] if profile is None else profilers(variant, int(spec.duration), round_no, profile)
    before = {v.name: group_ns(v.pids()) for v in everyone}
    proc = harness.run_wrk(spec)
    result = harness.collect(proc, spec)
    for spy in spies:
        spy.wait(timeout=60)
    threads = spent_by_thread(before[variant.name], variant.pids())
    spent = {variant.name: sum(threads.values())}
    spent.update({v.name: spent_s(before[v.name], v.pids()) for v in others})
    ok = sum(n for status, n in result["status"].items() if status.startswith("2"))
    return {
        "round": round_no,
        "variant": variant.name,
        "requests": result["requests"],
        "ok": ok,
        "status": result["status"],
        "duration_s": result["duration_s"],
        "cpu_s": round(spent[variant.name], 4),
        "us_per_request": round(spent[variant.name] * 1e6 / max(1, result["requests"]), 2),
        # The same by thread (all processes of the variant): which thread pays.
        "us_per_request_by_thread": {
            name: round(cpu * 1e6 / max(1, result["requests"]), 2)
            for name, cpu in sorted(threads.items(), key=lambda kv: -kv[1])
            if cpu > 0
        },
        # The variants not under load in this slice: their background work (timers, the
        # invalidation bus) is what they spend while idle, a check on the attribution.
        "idle_cpu_s": {v.name: round(spent[v.name], 4) for v in others},
        "p50_ms": result["latency_ms"]["percentiles"].get("50"),
        "p99_ms": result["latency_ms"]["percentiles"].get("99"),
    }


def _top_threads(variants: list[Variant], count: int = 5) -> list[str]:
    total: dict[str, float] = {}
    for v in variants:
        for s in v.slices:
            for name, us in s["us_per_request_by_thread"].items():
                total[name] = total.get(name, 0.0) + us
    return sorted(total, key=lambda n: -total[n])[:count]


def report(scenario: str, variants: list[Variant], rounds: int) -> str:
    by = {v.name: {s["round"]: s for s in v.slices} for v in variants}
    lines = [
        f"# Tracing's cost, interleaved: {scenario}",
        "",
        "Service CPU per request (µs) of each variant in each round; the ratio to `off` is per "
        "round (slices seconds apart), its median in bold.",
        "",
        "| variant | µs per request, rounds 1-" + str(rounds) + " | median | over `off`, per round "
        "(**median**) | requests/s (median) |",
        "|---|---|---|---|---|",
    ]
    medians: dict[str, float] = {}
    for v in variants:
        cost = [by[v.name][r]["us_per_request"] for r in range(rounds)]
        rate = [by[v.name][r]["requests"] / by[v.name][r]["duration_s"] for r in range(rounds)]
        medians[v.name] = statistics.median(cost)
        extra = ""
        if "off" in by and v.name != "off":
            ratios = [
                by[v.name][r]["us_per_request"] / by["off"][r]["us_per_request"] - 1
                for r in range(rounds)
            ]
            extra = (
                ", ".join(f"{x:+.1%}" for x in ratios) + f" (**{statistics.median(ratios):+.1%}**)"
            )
        lines.append(
            f"| {v.name} | {', '.join(f'{c:.1f}' for c in cost)} | {medians[v.name]:.1f} | "
            f"{extra} | {statistics.median(rate):.0f} |"
        )
    lines += [
        "",
        "By thread (all processes of a variant; median µs per request over the rounds):",
        "",
        "| variant | " + " | ".join(_top_threads(variants)) + " |",
        "|---|" + "---|" * len(_top_threads(variants)),
    ]
    for v in variants:
        cells = []
        for name in _top_threads(variants):
            values = [s["us_per_request_by_thread"].get(name, 0.0) for s in v.slices]
            cells.append(f"{statistics.median(values):.1f}")
        lines.append(f"| {v.name} | " + " | ".join(cells) + " |")
    if {"rate0", "rate10", "rate100"} <= medians.keys():
        fixed, full = medians["rate0"], medians["rate100"]
        lines += [
            "",
            f"Linear model: rate0 + 0.1 * (rate100 - rate0) = {fixed:.1f} + 0.1 * "
            f"{full - fixed:.1f} = **{fixed + 0.1 * (full - fixed):.1f} µs**; measured rate10 "
            f"**{medians['rate10']:.1f} µs**.",
        ]
        if "off" in medians:
            off = medians["off"]
            lines.append(
                f"Fixed cost (rate0 - off): {fixed - off:+.1f} µs ({fixed / off - 1:+.1%}); "
                f"a sampled request's extra (rate100 - rate0): {full - fixed:+.1f} µs."
            )
    idle = [cpu for v in variants for s in v.slices for cpu in s["idle_cpu_s"].values()]
    if idle:
        lines += [
            "",
            "An idle variant's CPU during another's slice: "
            f"median {statistics.median(idle):.3f} s, max {max(idle):.3f} s.",
        ]
    bad = [s for v in variants for s in v.slices if s["ok"] != s["requests"]]
    if bad:
        lines.append(f"Slices with non-2xx answers: {len(bad)} (see results.json).")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="refresh")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--slice", type=int, default=4)
    parser.add_argument("--variants", default="off,rate0,rate10,rate100")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy on the loaded variant's workers in every slice (OUT/stacks-<variant>.txt.gz)",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise SystemExit(f"unknown variant(s) {unknown}: choose among {', '.join(VARIANTS)}")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run `make bench-tools` first")
    script, connections, threads, count = SCENARIOS[args.scenario]
    out = args.out or harness.BENCH / "results" / f"interleaved-{args.scenario}"
    out.mkdir(parents=True, exist_ok=True)

    work = Path(tempfile.mkdtemp(prefix="auth-interleaved-"))
    smtp = harness.smtp_sink(work)
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.observability.sink", str(SINK_PORT)],
        cwd=harness.ROOT,
        stdout=(work / "sink.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    variants: list[Variant] = []
    try:
        harness.log(f"fresh database {harness.CONFIG.db}, work dir {work}")
        harness.fresh_database()
        harness.flush_redis()
        env = harness.service_env(work)
        subprocess.run(
            [str(harness.BIN / "auth-service"), "migrate"], env=env, check=True, cwd=harness.ROOT
        )
        harness.log(f"seeded {harness.seed_users(env)['users']} users")
        variants = [Variant(n, i, env, work) for i, n in enumerate(names)]
        for v in variants:
            v.start()
        for v in variants:
            harness.wait_http(f"http://127.0.0.1:{v.management_port}/health/ready", timeout=240)
        time.sleep(2)
        harness.log(f"{len(variants)} servers ready: " + ", ".join(v.name for v in variants))

        def spec(v: Variant, files: dict[str, str], duration: int) -> harness.Wrk:
            return harness.Wrk(args.scenario, script, v.base, connections, threads, duration, files)

        # me keeps its sessions for the whole run; refresh takes new ones every round (a chain
        # lives in one wrk process).
        offset = 0
        files: dict[str, dict[str, str]] = {}
        for v in variants:
            files[v.name] = sessions(v, count, offset, f"{v.name}-warm")
            offset += count
            warm = spec(v, files[v.name], 2)  # fills the caches, opens the connections
            harness.collect(harness.run_wrk(warm), warm)
        for r in range(args.rounds):
            if args.scenario == "refresh":
                for v in variants:
                    files[v.name] = sessions(v, count, offset, f"{v.name}-{r}")
                    offset += count
                time.sleep(1)  # the sign-ins' after-work (audit, outbox) out of the slices
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for v in order:
                others = [o for o in variants if o is not v]
                s = one_slice(
                    v,
                    others,
                    spec(v, files[v.name], args.slice),
                    r,
                    out / "stacks" if args.profile else None,
                )
                v.slices.append(s)
                harness.log(
                    f"round {r + 1}/{args.rounds} {v.name}: {s['us_per_request']:.1f} µs/request, "
                    f"{s['requests'] / s['duration_s']:.0f}/s, p99 {s['p99_ms']} ms"
                )
        if args.profile:
            merge_stacks(out, [v.name for v in variants])
        text = report(args.scenario, variants, args.rounds)
        (out / "report.md").write_text(text)
        (out / "results.json").write_text(
            json.dumps(
                {
                    "scenario": args.scenario,
                    "slice_s": args.slice,
                    "rounds": args.rounds,
                    "machine": harness.machine(),
                    "variants": {
                        v.name: {"env": VARIANTS[v.name], "slices": v.slices} for v in variants
                    },
                },
                indent=2,
            )
        )
        print(text)
        harness.log(f"written {out}")
    finally:
        for v in variants:
            if v.server is not None:
                v.server.stop()
        sink.terminate()
        sink.wait(timeout=10)
        smtp.stop()


if __name__ == "__main__":
    main()
