"""`make bench`: start the service in production mode and measure it with wrk.

Creates a fresh PostgreSQL database and uses a dedicated (flushed) Redis index, migrates,
seeds users with COPY, starts ``auth-service serve --workers N``, measures the baselines and
every scenario, and writes ``bench/results/<date>/`` (report.md, results.json, PNG plots).

Knobs (environment): BENCH_DURATION (s per scenario, 15), BENCH_USERS (100000),
BENCH_WORKERS (CPU count), BENCH_SCENARIOS (comma list, default all), BENCH_PROFILE=1
(py-spy on one worker during login, refresh, me and me_during_login; BENCH_PROFILE=svg for
flame graphs; BENCH_PROFILE_ARGS, more py-spy options, e.g. "--gil" or "--idle"),
BENCH_SOAK (s of mixed load with RSS samples, 0), BENCH_PG
(postgresql://postgres@127.0.0.1:5432), BENCH_DB (auth_bench),
BENCH_REDIS (redis://127.0.0.1:6379), BENCH_REDIS_DB (13), BENCH_OUT (results directory),
BENCH_SERVICE_ENV (extra service settings for experiments, "KEY=VALUE,KEY=VALUE"),
BENCH_REFRESH_STEPS=0 (refresh at saturation only, without the paced steps after it),
BENCH_TRIM_PROBE=1 (after the last scenario: glibc ``malloc_stats`` and ``malloc_trim(0)`` in
each worker through gdb, RSS before and after: what holds the high-water mark).
The forgot scenario (``forgot_timing``) runs after the wrk scenarios when selected.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import http.client
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import mfa, procstat, report

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "lua"
BIN = Path(sys.executable).parent

# Keycloak's argon2id parameters (its default password policy) and the shared password.
ARGON2 = {"memory_kib": 7168, "time_cost": 5, "parallelism": 1}
PASSWORD = "bench-Password-1234"
CONFIG_PUBLIC_URL = "https://bench.invalid"
DEFAULT_TENANT = "00000000-0000-4000-8000-000000000001"
# Users with an authenticator app for login_totp: more than a run's sign-ins (each signs in
# once per run, see bench/mfa.py).
TOTP_USERS = 20_000
# Every named limiter raised far above the benchmark's rates: the limiters still run (their
# Redis round trips are part of the cost measured), they just never say no.
# Accounts the forgot scenario asks a reset link for (forgot<i>@bench.example).
FORGOT_USERS = 10_000
RATE_LIMITS = [
    "LOGIN_PER_IP",
    "LOGIN_PER_ACCOUNT",
    "REGISTER_PER_IP",
    "FORGOT_PER_IP",
    "FORGOT_PER_ACCOUNT",
    "RESET_PER_IP",
    "REFRESH_PER_IP",
    "VERIFY_PER_IP",
]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


@dataclass
class Config:
    duration: int = env_int("BENCH_DURATION", 15)
    users: int = env_int("BENCH_USERS", 100_000)
    workers: int = env_int("BENCH_WORKERS", os.cpu_count() or 2)
    scenarios: set[str] = field(
        default_factory=lambda: {
            s.strip() for s in os.environ.get("BENCH_SCENARIOS", "").split(",") if s.strip()
        }
    )
    profile: bool = os.environ.get("BENCH_PROFILE", "0") not in ("", "0")
    soak: int = env_int("BENCH_SOAK", 0)
    pg: str = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
    db: str = os.environ.get("BENCH_DB", "auth_bench")
    redis: str = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
    redis_db: int = env_int("BENCH_REDIS_DB", 13)
    port: int = env_int("BENCH_PORT", 18080)
    management_port: int = env_int("BENCH_MANAGEMENT_PORT", 19090)
    trivial_port: int = env_int("BENCH_TRIVIAL_PORT", 18081)
    smtp_port: int = env_int("BENCH_SMTP_PORT", 18025)
    raw_port: int = env_int("BENCH_RAW_PORT", 18082)
    out: Path = Path(
        os.environ.get("BENCH_OUT")
        or BENCH / "results" / dt.datetime.now(dt.UTC).date().isoformat()
    )

    def wants(self, name: str) -> bool:
        return not self.scenarios or name in self.scenarios


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- machine, database, redis ----------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[
        0
    ]
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": psql("SELECT current_setting('server_version')", db="postgres"),
        "wrk": wrk_version.strip(),
        "loadavg_before": os.getloadavg(),
    }


def psql(sql: str, db: str, stdin: str | None = None) -> str:
    cfg = CONFIG
    done = subprocess.run(
        ["psql", f"{cfg.pg}/{db}", "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
        input=stdin,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


def fresh_database() -> None:
    psql(f'DROP DATABASE IF EXISTS "{CONFIG.db}" WITH (FORCE)', db="postgres")
    psql(f'CREATE DATABASE "{CONFIG.db}"', db="postgres")


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(f"{CONFIG.redis}/{CONFIG.redis_db}").flushdb()


def seed_users(
    env: dict[str, str], email: str = "user{}@bench.invalid", count: int | None = None
) -> dict[str, Any]:
    """COPY ``users`` rows sharing ONE precomputed argon2id hash (the benchmark's parameters).

    Hashing 100k passwords one by one would take an hour of CPU and measure nothing: login
    verifies one hash per request whatever the hash's salt, so one shared hash is equivalent.
    ``email`` is formatted with the user's number (``count`` users, default BENCH_USERS).
    """
    count = CONFIG.users if count is None else count
    from argon2 import PasswordHasher, Type

    encoded = PasswordHasher(
        time_cost=ARGON2["time_cost"],
        memory_cost=ARGON2["memory_kib"],
        parallelism=ARGON2["parallelism"],
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    ).hash(PASSWORD)
    now = dt.datetime.now(dt.UTC).isoformat()
    start = time.perf_counter()
    rows = "".join(
        f"{uuid.uuid4()}\t{email.format(i)}\tUser {i}\t{encoded}\tactive\t{now}\t{now}"
        f"\t{now}\t{now}\t{DEFAULT_TENANT}\n"
        for i in range(count)
    )
    psql(
        "COPY users (id, email, name, password_hash, status, email_verified_at, "
        "password_changed_at, created_at, updated_at, tenant_id) FROM STDIN",
        db=CONFIG.db,
        stdin=rows,
    )
    psql("VACUUM ANALYZE", db=CONFIG.db)
    return {"users": count, "seconds": round(time.perf_counter() - start, 2)}


# ---- processes -------------------------------------------------------------------------------


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not become ready in {timeout:.0f}s")


def smtp_sink(work: Path) -> Server:
    """aiosmtpd accepting and discarding every message, on ``BENCH_SMTP_PORT``."""
    sink = Server(
        "smtp-sink",
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "--nosetuid",
            "--listen",
            f"127.0.0.1:{CONFIG.smtp_port}",
            "--class",
            "aiosmtpd.handlers.Sink",
            "--smtputf8",
        ],
        {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")},
        work / "smtp-sink.log",
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", CONFIG.smtp_port), timeout=1).close()
            return sink
        except OSError:
            if time.monotonic() > deadline or sink.proc.poll() is not None:
                sink.stop()
                raise SystemExit(
                    f"the SMTP sink did not start: see {work / 'smtp-sink.log'}"
                ) from None
            time.sleep(0.1)


class Server:
    """A process group we started; stopped by its own pid only."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logfile: Path) -> None:
        self.name = name
        self.log = logfile.open("ab")
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def pids(self) -> list[int]:
        return [self.proc.pid, *procstat.descendants(self.proc.pid)]

    def workers(self) -> list[int]:
        return [
            p for p in procstat.descendants(self.proc.pid) if "spawn_main" in procstat.cmdline(p)
        ]

    def rss(self) -> dict[str, float]:
        return {str(p): round(procstat.rss_mib(p) or 0.0, 1) for p in self.workers()}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def pg_backends() -> list[int]:
    out = psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{CONFIG.db}'", db="postgres")
    return [int(p) for p in out.split()]


def pg_xacts() -> int:
    return int(
        psql(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            f"WHERE datname = '{CONFIG.db}'",
            db="postgres",
        )
    )


# ---- tokens ----------------------------------------------------------------------------------


def post_json(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}"), _lower(r.headers.items())
    except urllib.error.HTTPError as exc:
        return exc.code, {}, _lower(exc.headers.items())


def _lower(items: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in items}


def login_many(base: str, count: int, offset: int) -> list[dict[str, Any]]:
    """Open ``count`` sessions of distinct users (argon2 per login, a few at a time)."""

    def one(i: int) -> dict[str, Any]:
        email = f"user{(offset + i) % CONFIG.users}@bench.invalid"
        for _ in range(20):
            status, body, _ = post_json(
                f"{base}/v1/auth/login", {"email": email, "password": PASSWORD}
            )
            if status == 200:
                return body
            time.sleep(0.5)
        raise SystemExit(f"cannot log in {email} (HTTP {status})")

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def page_forms(base: str, work: Path, count: int) -> dict[str, str]:
    """``count`` browsers' first visits to /login: each one's anti-forgery cookie and the
    token of its form (tokens are stateless HMACs of the cookie, so they stay valid)."""
    lines = []
    for _ in range(count):
        with urllib.request.urlopen(f"{base}/login", timeout=10) as response:
            cookie = response.headers["Set-Cookie"].split(";", 1)[0]
            html = response.read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)
        if token is None:
            raise SystemExit("page_login: no csrf_token in /login")
        lines.append(f"{cookie} {token.group(1)}\n")
    path = work / "page-forms"
    path.write_text("".join(lines))
    return {"BENCH_PAGE_FORMS": str(path), "BENCH_ORIGIN": CONFIG_PUBLIC_URL}


def token_files(work: Path, name: str, pairs: list[dict[str, Any]]) -> dict[str, str]:
    access = work / f"{name}.access"
    refresh = work / f"{name}.refresh"
    access.write_text("".join(p["access_token"] + "\n" for p in pairs))
    refresh.write_text("".join(p["refresh_token"] + "\n" for p in pairs))
    return {"BENCH_ACCESS_TOKENS": str(access), "BENCH_REFRESH_TOKENS": str(refresh)}


# ---- load ------------------------------------------------------------------------------------


@dataclass
class Wrk:
    label: str
    script: str
    url: str
    connections: int
    threads: int = 2
    duration: float = 15
    env: dict[str, str] = field(default_factory=dict)
    delay_ms: float = 0.0


class Probe(threading.Thread):
    """A few requests per second timed one by one (wrk cannot split latency by status)."""

    def __init__(self, url: str, body: dict[str, Any], per_second: float, duration: float) -> None:
        super().__init__(daemon=True)
        self.url, self.body, self.interval, self.duration = url, body, 1 / per_second, duration
        self.samples: list[tuple[int, float, str | None]] = []

    def run(self) -> None:
        end = time.monotonic() + self.duration
        while time.monotonic() < end:
            start = time.perf_counter()
            status, _, headers = post_json(self.url, self.body)
            elapsed = (time.perf_counter() - start) * 1000
            self.samples.append((status, elapsed, headers.get("retry-after")))
            time.sleep(max(0.0, self.interval - elapsed / 1000))

    def summary(self) -> dict[str, Any]:
        admitted = sorted(ms for s, ms, _ in self.samples if s < 400)
        shed = [(s, ms, ra) for s, ms, ra in self.samples if s in (429, 503)]
        return {
            "samples": len(self.samples),
            "status": dict(Counter(str(s) for s, _, _ in self.samples)),
            "admitted_p50_ms": percentile(admitted, 50),
            "admitted_p99_ms": percentile(admitted, 99),
            "admitted_max_ms": max(admitted) if admitted else None,
            "shed_p99_ms": percentile(sorted(ms for _, ms, _ in shed), 99),
            "shed_with_retry_after": sum(1 for _, _, ra in shed if ra),
            "shed": len(shed),
        }


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * p / 100))], 2)


def run_wrk(spec: Wrk) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "BENCH_LUA": str(LUA),
        "BENCH_USERS": str(CONFIG.users),
        "BENCH_PASSWORD": PASSWORD,
        "BENCH_DELAY_MS": str(spec.delay_ms),
        **spec.env,
    }
    argv = [
        "wrk",
        f"-t{spec.threads}",
        f"-c{spec.connections}",
        f"-d{spec.duration}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA / spec.script),
        spec.url,
    ]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def collect(proc: subprocess.Popen[str], spec: Wrk) -> dict[str, Any]:
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = proc.stdout.read() if proc.stdout else ""
    stderr = proc.stderr.read() if proc.stderr else ""
    line = next((x for x in stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk {spec.label} gave no result: {stderr.strip() or stdout[-500:]}")
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    # A page's success is a 303 (sign-in redirects); the API's is a 2xx.
    ok = sum(v for k, v in result["status"].items() if k.startswith("2") or k == "303")
    result.update(
        label=spec.label,
        connections=spec.connections,
        threads=spec.threads,
        delay_ms=spec.delay_ms,
        offered_per_s=(
            round(spec.connections * 1000 / spec.delay_ms, 1) if spec.delay_ms else None
        ),
        throughput=result["requests"] / result["duration_s"],
        ok_per_s=ok / result["duration_s"],
        generator_cpu_s=usage.ru_utime + usage.ru_stime,
    )
    return result


def measure(
    name: str,
    specs: list[Wrk],
    server: Server,
    probe: Probe | None = None,
    profile: bool = False,
) -> dict[str, Any]:
    """Run the wrk processes together; attribute CPU by process group from /proc."""
    log(f"scenario {name}: " + ", ".join(f"{s.label} c={s.connections}" for s in specs))
    redis_pids = procstat.pids_named("redis-server")
    service = procstat.CpuMeter.snapshot(server.pids())
    database = procstat.CpuMeter.snapshot(pg_backends())
    redis_meter = procstat.CpuMeter.snapshot(redis_pids)
    xacts = pg_xacts()
    rss_before = server.rss()
    spies = start_profile(name, server, max(s.duration for s in specs)) if profile else []
    started = time.monotonic()
    procs = [run_wrk(s) for s in specs]
    if probe is not None:
        probe.start()
    results = [collect(p, s) for p, s in zip(procs, specs, strict=True)]
    wall = time.monotonic() - started
    if probe is not None:
        probe.join()
    for spy in spies:
        spy.wait(timeout=60)
    service_cpu = service.spent(server.pids())
    requests = sum(r["requests"] for r in results)
    out: dict[str, Any] = {
        "name": name,
        "wall_s": round(wall, 2),
        "loads": results,
        "service_cpu_s": round(service_cpu, 2),
        "database_cpu_s": round(database.spent(pg_backends()), 2),
        "redis_cpu_s": round(redis_meter.spent(redis_pids), 2),
        "generator_cpu_s": round(sum(r["generator_cpu_s"] for r in results), 2),
        "requests_per_service_cpu_s": round(requests / service_cpu, 1) if service_cpu else None,
        "db_transactions_per_request": round((pg_xacts() - xacts) / requests, 2)
        if requests
        else None,
        "rss_mib_before": rss_before,
        "rss_mib_after": server.rss(),
    }
    if probe is not None:
        out["probe"] = probe.summary()
    main = results[0]
    log(
        f"  {main['label']}: {main['throughput']:.0f}/s "
        f"p99 {main['latency_ms']['percentiles']['99']:.1f} ms status {main['status']} "
        f"service cpu {service_cpu:.1f}s"
    )
    return out


def py_spy(pid: int, seconds: float, rate: int, fmt: str, output: Path) -> subprocess.Popen[bytes]:
    """``py-spy record`` on one process for ``seconds``, without pausing it (``--nonblocking``),
    with the options of BENCH_PROFILE_ARGS (e.g. ``--gil``, ``--idle``)."""
    spy = shutil.which("py-spy") or str(BIN / "py-spy")
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(rate),
            "--format",
            fmt,
            "--nonblocking",
            *os.environ.get("BENCH_PROFILE_ARGS", "").split(),
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_profile(name: str, server: Server, duration: float) -> list[subprocess.Popen[bytes]]:
    """py-spy on one worker: raw stacks (``BENCH_PROFILE=1``) or a flame graph SVG
    (``BENCH_PROFILE=svg``)."""
    svg = os.environ.get("BENCH_PROFILE") == "svg"
    output = CONFIG.out / f"profile-{name}.{'svg' if svg else 'txt'}"
    return [
        py_spy(pid, duration, 100, "flamegraph" if svg else "raw", output)
        for pid in server.workers()[:1]
    ]


# ---- baselines -------------------------------------------------------------------------------


def argon2_baseline() -> dict[str, Any]:
    log("baseline: pure argon2id verify rate")
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "baselines" / "argon2_rate.py"),
            "--processes",
            str(CONFIG.workers),
            "--duration",
            str(min(CONFIG.duration, 10)),
            "--memory-kib",
            str(ARGON2["memory_kib"]),
            "--time-cost",
            str(ARGON2["time_cost"]),
            "--parallelism",
            str(ARGON2["parallelism"]),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    log(f"  {result['verifies_per_s']:.1f} verifies/s")
    return result


def uvicorn_baseline(work: Path, name: str, module: str, path: str, port: int) -> dict[str, Any]:
    """A baseline app served by uvicorn with the service's workers, loop and parser."""
    server = Server(
        name,
        [
            str(BIN / "uvicorn"),
            module,
            "--app-dir",
            str(BENCH / "baselines"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(CONFIG.workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        dict(os.environ),
        work / f"{name}.log",
    )
    try:
        wait_http(f"http://127.0.0.1:{port}{path}")
        time.sleep(1)
        spec = Wrk(
            name,
            "get.lua",
            f"http://127.0.0.1:{port}",
            64,
            duration=CONFIG.duration,
            env={"BENCH_PATH": path},
        )
        return measure(f"baseline_{name}", [spec], server)
    finally:
        server.stop()


def trivial_baseline(work: Path) -> dict[str, Any]:
    """One FastAPI route returning a small JSON object (bench/baselines/trivial_app.py)."""
    return uvicorn_baseline(work, "trivial", "trivial_app:app", "/trivial", CONFIG.trivial_port)


def raw_baseline(work: Path) -> dict[str, Any]:
    """The raw ASGI ceiling: a bare callable, same JSON body (bench/baselines/raw_asgi.py)."""
    return uvicorn_baseline(work, "raw", "raw_asgi:app", "/raw", CONFIG.raw_port)


# ---- the run ---------------------------------------------------------------------------------


def service_env(work: Path) -> dict[str, str]:
    key = work / "master.key"
    key.write_text(secrets.token_urlsafe(32))
    key.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_") and k != "PYTHONPATH"}
    env.update(
        AUTH_ENV="production",
        AUTH_SERVER__PUBLIC_URL=CONFIG_PUBLIC_URL,
        AUTH_MASTER_KEY_FILE=str(key),
        AUTH_DATA_DIR=str(work / "data"),
        AUTH_DATABASE__URL=CONFIG.pg.replace("postgresql://", "postgresql+asyncpg://", 1)
        + f"/{CONFIG.db}",
        AUTH_REDIS__URL=f"{CONFIG.redis}/{CONFIG.redis_db}",
        AUTH_PASSWORDS__ARGON2_MEMORY_COST_KIB=str(ARGON2["memory_kib"]),
        AUTH_PASSWORDS__ARGON2_TIME_COST=str(ARGON2["time_cost"]),
        AUTH_PASSWORDS__ARGON2_PARALLELISM=str(ARGON2["parallelism"]),
        AUTH_LOGGING__FORMAT="json",
        # Mail goes to a local sink (``smtp_sink``): it is delivered once, as in production,
        # instead of failing and retrying into the scenarios that follow the registrations.
        AUTH_MAIL__BACKEND="smtp",
        AUTH_MAIL__SMTP_HOST="127.0.0.1",
        AUTH_MAIL__SMTP_PORT=str(CONFIG.smtp_port),
        AUTH_MAIL__SMTP_STARTTLS="false",
    )
    for limiter in RATE_LIMITS:
        env[f"AUTH_RATE_LIMITS__{limiter}"] = "1000000/minute"
    # Experiments: BENCH_SERVICE_ENV="AUTH_LOGGING__ACCESS_LOG=false,AUTH_SERVER__WORKERS=..."
    for pair in filter(None, os.environ.get("BENCH_SERVICE_ENV", "").split(",")):
        key, _, value = pair.partition("=")
        env[key.strip()] = value.strip()
    return env


def run() -> dict[str, Any]:
    cfg = CONFIG
    cfg.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="auth-bench-"))
    results: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {
            "duration_s": cfg.duration,
            "users": cfg.users,
            "workers": cfg.workers,
            "argon2": ARGON2,
            "rate_limits": "every limiter set to 1000000/minute (still evaluated in Redis)",
        },
        "scenarios": {},
    }
    scenarios: dict[str, Any] = results["scenarios"]
    base = f"http://127.0.0.1:{cfg.port}"
    mgmt = f"http://127.0.0.1:{cfg.management_port}"
    D = cfg.duration
    server: Server | None = None
    sink = smtp_sink(work)
    try:
        log(f"fresh database {cfg.db}, redis index {cfg.redis_db}, work dir {work}")
        fresh_database()
        flush_redis()
        env = service_env(work)
        subprocess.run([str(BIN / "auth-service"), "migrate"], env=env, check=True, cwd=ROOT)
        results["seed"] = seed_users(env)
        log(f"seeded {cfg.users} users in {results['seed']['seconds']}s")
        if cfg.wants("login_totp") or cfg.wants("login_totp_one"):
            results["seed_totp"] = mfa.seed_totp_users(
                psql, cfg.db, env, TOTP_USERS, DEFAULT_TENANT
            )

        results["baselines"] = {"argon2": argon2_baseline()}
        if cfg.wants("baseline_trivial"):
            results["baselines"]["trivial"] = trivial_baseline(work)
        if cfg.wants("baseline_raw"):
            results["baselines"]["raw"] = raw_baseline(work)

        server = Server(
            "auth-service",
            [
                str(BIN / "auth-service"),
                "serve",
                "--workers",
                str(cfg.workers),
                "--port",
                str(cfg.port),
                "--management-port",
                str(cfg.management_port),
            ],
            env,
            work / "service.log",
        )
        # On a loaded machine uvicorn kills a worker whose imports take more than 5 s (its
        # health ping) and starts another: give the workers time to come up.
        wait_http(f"{mgmt}/health/ready", timeout=240)
        time.sleep(2)  # every worker has finished its start-up (key cache, hasher warm-up)
        results["rss_mib_start"] = server.rss()

        log("counting database and Redis round trips per request (in process)")
        rt = subprocess.run(
            [sys.executable, str(BENCH / "roundtrips.py")],
            env={**env, "BENCH_USERS": str(cfg.users), "BENCH_PASSWORD": PASSWORD},
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if rt.returncode == 0:
            results["round_trips"] = json.loads(rt.stdout.strip().splitlines()[-1])
        else:
            results["round_trips"] = {"error": rt.stderr.strip()[-2000:]}

        def want(name: str) -> bool:
            return cfg.wants(name)

        if want("jwks"):
            scenarios["jwks"] = measure(
                "jwks",
                [Wrk("jwks", "get.lua", base, 64, 2, D, {"BENCH_PATH": "/.well-known/jwks.json"})],
                server,
                profile=cfg.profile,
            )
        if want("discovery"):
            scenarios["discovery"] = measure(
                "discovery",
                [
                    Wrk(
                        "discovery",
                        "get.lua",
                        base,
                        64,
                        2,
                        D,
                        {"BENCH_PATH": "/.well-known/openid-configuration"},
                    )
                ],
                server,
                profile=cfg.profile,
            )
        if want("health_ready"):
            scenarios["health_ready"] = measure(
                "health_ready",
                [Wrk("ready", "get.lua", mgmt, 64, 2, D, {"BENCH_PATH": "/health/ready"})],
                server,
            )
            scenarios["health_ready_1000"] = measure(
                "health_ready_1000",
                [
                    Wrk(
                        "ready@1000/s",
                        "get.lua",
                        mgmt,
                        10,
                        2,
                        D,
                        {"BENCH_PATH": "/health/ready"},
                        10,
                    )
                ],
                server,
            )
        if want("me"):
            pairs = login_many(base, 64, 0)
            files = token_files(work, "me", pairs)
            scenarios["me"] = measure(
                "me", [Wrk("me", "me.lua", base, 64, 2, D, files)], server, profile=cfg.profile
            )
            if want("me_again"):
                # The same load again at once, the caches as the first run left them: where
                # the first run's tail comes from its start (cold caches, first connections),
                # this one does not have it.
                scenarios["me_again"] = measure(
                    "me_again", [Wrk("me", "me.lua", base, 64, 2, D, files)], server
                )
            if want("me_fresh"):
                # A warm process, 64 sessions it has not seen: a tail that comes back here is
                # the cost of first sight of a session (its caches' fills), not of the process.
                fresh = token_files(work, "me_fresh", login_many(base, 64, 64))
                scenarios["me_fresh"] = measure(
                    "me_fresh", [Wrk("me", "me.lua", base, 64, 2, D, fresh)], server
                )
        if want("login"):
            scenarios["login"] = measure(
                "login", [Wrk("login", "login.lua", base, 8, 2, D)], server, profile=cfg.profile
            )
        if want("login_totp"):
            # One connection per thread: each alternates the password and the code request, so
            # twice login's connections keep as many passwords waiting for the hash threads.
            scenarios["login_totp"] = measure(
                "login_totp",
                [
                    Wrk(
                        "login + TOTP",
                        "login_totp.lua",
                        base,
                        16,
                        16,
                        D,
                        {**mfa.wrk_env(TOTP_USERS, D), "BENCH_THREADS": "16"},
                    )
                ],
                server,
                profile=cfg.profile,
            )
        if want("login_totp_one"):
            # The same users' second half (the two-request scenario walks the first), the
            # code sent with the password: one request per sign-in, login's connections.
            scenarios["login_totp_one"] = measure(
                "login_totp_one",
                [
                    Wrk(
                        "login + TOTP, one request",
                        "login_totp_one.lua",
                        base,
                        8,
                        2,
                        D,
                        {
                            **mfa.wrk_env(TOTP_USERS, D),
                            "BENCH_THREADS": "2",
                            "BENCH_TOTP_OFFSET": str(TOTP_USERS // 2),
                        },
                    )
                ],
                server,
                profile=cfg.profile,
            )
        if want("login_page"):
            scenarios["login_page"] = measure(
                "login_page",
                [Wrk("GET /login", "get.lua", base, 64, 2, D, {"BENCH_PATH": "/login"})],
                server,
            )
        if want("page_login"):
            scenarios["page_login"] = measure(
                "page_login",
                [Wrk("POST /login", "page_login.lua", base, 8, 2, D, page_forms(base, work, 64))],
                server,
            )
        if want("refresh"):
            files = token_files(work, "refresh", login_many(base, 16, 1000))
            scenarios["refresh"] = measure(
                "refresh",
                [Wrk("refresh", "refresh.lua", base, 16, 16, D, files)],
                server,
                profile=cfg.profile,
            )
            top = scenarios["refresh"]["loads"][0]["ok_per_s"]
            steps = []
            fractions = (0.25, 0.5, 0.75, 1.0, 1.25)
            if os.environ.get("BENCH_REFRESH_STEPS", "1") in ("", "0"):
                fractions = ()
            for fraction in fractions:
                rate = max(10.0, top * fraction)
                files = token_files(work, f"refresh{fraction}", login_many(base, 16, 2000))
                step = measure(
                    f"refresh_at_{int(fraction * 100)}pct",
                    [
                        Wrk(
                            f"refresh@{rate:.0f}/s",
                            "refresh.lua",
                            base,
                            16,
                            16,
                            max(5, D // 2),
                            files,
                            round(16 * 1000 / rate, 2),
                        )
                    ],
                    server,
                )
                step["fraction_of_max"] = fraction
                steps.append(step)
            scenarios["refresh_steps"] = steps
        if want("register"):
            scenarios["register"] = measure(
                "register",
                [
                    Wrk(
                        "register",
                        "register.lua",
                        base,
                        8,
                        2,
                        D,
                        {"BENCH_RUN_ID": uuid.uuid4().hex[:8]},
                    )
                ],
                server,
            )
        if want("mixed"):
            files = token_files(work, "mixed", login_many(base, 16, 3000))
            scenarios["mixed"] = measure(
                "mixed", [Wrk("mixed", "mixed.lua", base, 16, 16, D, files)], server
            )
        if want("me_during_login"):
            files = token_files(work, "me2", login_many(base, 8, 4000))
            scenarios["me_during_login"] = measure(
                "me_during_login",
                [
                    Wrk("me@200/s", "me.lua", base, 4, 1, D, files, 20),
                    Wrk("login (saturating)", "login.lua", base, 32, 2, D),
                ],
                server,
                profile=cfg.profile,
            )
        if want("overload"):
            login_max = scenarios.get("login", {}).get("loads", [{}])[0].get("ok_per_s") or 30.0
            rate = 2 * login_max
            probe = Probe(
                f"{base}/v1/auth/login",
                {"email": "user7@bench.invalid", "password": PASSWORD},
                4,
                D,
            )
            scenarios["overload"] = measure(
                "overload",
                [
                    Wrk(
                        f"login@{rate:.0f}/s (2x max)",
                        "login.lua",
                        base,
                        128,
                        2,
                        D,
                        delay_ms=round(128 * 1000 / rate, 1),
                    )
                ],
                server,
                probe=probe,
            )
        if want("forgot"):
            results["forgot"] = forgot_timing(base)
        if cfg.soak:
            results["soak"] = soak(server, base, work)
        results["rss_mib_end"] = server.rss()
        if os.environ.get("BENCH_TRIM_PROBE", "0") not in ("", "0"):
            results["rss_probe"] = trim_probe(server)
    finally:
        if server is not None:
            server.stop()
            tail = (work / "service.log").read_text(errors="replace").splitlines()[-300:]
            (cfg.out / "service-log-tail.txt").write_text("\n".join(tail) + "\n")
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["loadavg_after"] = os.getloadavg()
    results["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return results


def trim_probe(server: Server) -> dict[str, Any]:
    """What holds a worker's RSS after the run (BENCH_TRIM_PROBE=1): glibc's ``malloc_stats()``
    (written to the service log) and ``malloc_trim(0)`` called in each worker through gdb, with
    the RSS before and after. Memory the trim returns was free inside glibc's heaps (a
    high-water mark of freed buffers); what stays is live or fragmented Python memory."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return {"error": "gdb is not installed"}
    out: dict[str, Any] = {}
    for pid in server.workers():
        before = procstat.rss_mib(pid) or 0.0
        run = subprocess.run(
            [
                gdb,
                "-p",
                str(pid),
                "-batch",
                "-ex",
                "call (void)malloc_stats()",
                "-ex",
                "call (int)malloc_trim(0)",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        after = procstat.rss_mib(pid) or 0.0
        out[str(pid)] = {
            "rss_mib_before_trim": round(before, 1),
            "rss_mib_after_trim": round(after, 1),
            "gdb_rc": run.returncode,
        }
    return out


def forgot_timing(base: str) -> dict[str, Any]:
    """Forgot-password for seeded and for unknown addresses, timed one by one (ADR 0011).

    An attacker times single requests, so this does too: one keep-alive connection, requests
    in pairs (a known and an unknown address, in random order within each pair), for
    BENCH_DURATION seconds, BENCH_FORGOT_GAP_MS (10) apart so that work a request leaves
    behind (the queued mail) does not land on the next one. Both kinds see the same machine
    moment by moment: the drift and noise of a shared machine fall on both alike. Reports
    both medians, their ratio (target: within 10 %) and the median paired difference.
    """
    # Addresses the service accepts: email-validator refuses the reserved .invalid of the
    # seeded sign-in users, which forgot-password answers before any lookup.
    seeded = seed_users({}, "forgot{}@bench.example", FORGOT_USERS)
    log(f"forgot timing: seeded {FORGOT_USERS} accounts in {seeded['seconds']}s")
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    rng = random.Random(20261204)  # picks addresses and orders pairs; no secret
    headers = {"Content-Type": "application/json"}

    def once(kind: str) -> float:
        i = rng.randrange(FORGOT_USERS)
        email = f"forgot{i}@bench.example" if kind == "known" else f"nobody{i}@bench.example"
        start = time.perf_counter()
        conn.request("POST", "/v1/auth/password/forgot", json.dumps({"email": email}), headers)
        response = conn.getresponse()
        response.read()
        elapsed = (time.perf_counter() - start) * 1000
        if response.status != 202:
            raise SystemExit(f"forgot-password answered {response.status} for a {kind} address")
        return elapsed

    gap = float(os.environ.get("BENCH_FORGOT_GAP_MS") or 10) / 1000

    def spaced(kind: str) -> float:
        ms = once(kind)
        time.sleep(gap)
        return ms

    for _ in range(50):  # warm: connection, prepared statements, caches
        spaced("known"), spaced("unknown")
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    differences = []
    end = time.monotonic() + CONFIG.duration
    while time.monotonic() < end:
        order = ("known", "unknown") if rng.random() < 0.5 else ("unknown", "known")
        pair = {kind: spaced(kind) for kind in order}
        for kind, ms in pair.items():
            times[kind].append(ms)
        differences.append(pair["known"] - pair["unknown"])
    conn.close()
    known, unknown = (statistics.median(times[kind]) for kind in ("known", "unknown"))
    ratio = known / unknown
    result = {
        "pairs": len(differences),
        "known_p50_ms": round(known, 3),
        "unknown_p50_ms": round(unknown, 3),
        "known_p90_ms": round(statistics.quantiles(times["known"], n=10)[-1], 3),
        "unknown_p90_ms": round(statistics.quantiles(times["unknown"], n=10)[-1], 3),
        "ratio": round(ratio, 3),
        "paired_difference_p50_ms": round(statistics.median(differences), 3),
        "within_10_percent": abs(ratio - 1) <= 0.10,
    }
    log(
        f"  forgot p50: known {known:.2f} ms, unknown {unknown:.2f} ms, ratio {ratio:.3f} "
        f"({len(differences)} pairs; median paired difference "
        f"{result['paired_difference_p50_ms']:+.3f} ms)"
    )
    return result


def soak(server: Server, base: str, work: Path) -> dict[str, Any]:
    """Mixed load for BENCH_SOAK seconds with an RSS sample every 10 s."""
    log(f"soak: mixed profile for {CONFIG.soak}s")
    files = token_files(work, "soak", login_many(base, 16, 5000))
    proc = run_wrk(Wrk("soak", "mixed.lua", base, 16, 16, CONFIG.soak, files))
    samples = []
    start = time.monotonic()
    while proc.poll() is None:
        samples.append({"t_s": round(time.monotonic() - start), "rss_mib": server.rss()})
        time.sleep(10)
    out = proc.stdout.read() if proc.stdout else ""
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), "BENCH_JSON {}")
    return {"samples": samples, "load": json.loads(line.removeprefix("BENCH_JSON "))}


CONFIG = Config()


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    results = run()
    out = CONFIG.out
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report.write(results, out)
    log(f"report: {out / 'report.md'}")


if __name__ == "__main__":
    main()
