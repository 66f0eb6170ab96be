"""The container image without Docker: the Dockerfile's structure, the build context, the
entrypoint script's behaviour (run with /bin/sh against a stand-in `auth-service`), and the
CLI commands the image relies on."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.deploy_support import ROOT

DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    ins = instructions()
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def test_multi_stage_with_a_slim_runtime() -> None:
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) >= 2
    assert all("slim" in f for f in froms)
    runtime = final_stage()
    copies = [args for word, args in runtime if word == "COPY"]
    assert any(c.startswith("--from=builder /opt/venv") for c in copies)
    run = " ".join(args for word, args in runtime if word == "RUN")
    for tool in ("gcc", "build-essential", "curl", "wget", "git"):
        assert not re.search(rf"\b{tool}\b", run.replace("urllib", "")), (
            f"{tool} in the runtime image"
        )
    assert "rm -rf /var/lib/apt/lists/*" in run


def test_runs_as_10001_with_tini_exec_form_and_cli_healthcheck() -> None:
    runtime = dict(final_stage())
    assert runtime["USER"] == "10001:10001"
    entry = json.loads(runtime["ENTRYPOINT"])
    assert entry[:2] == ["/usr/bin/tini", "--"], "a real init as PID 1"
    assert json.loads(runtime["CMD"]) == ["serve"]
    hc = runtime["HEALTHCHECK"]
    assert json.loads(hc[hc.index("CMD") + 3 :].strip())[:2] == ["auth-service", "healthcheck"]
    assert runtime["STOPSIGNAL"] == "SIGTERM"
    assert runtime["EXPOSE"].split() == ["8000", "9000"]
    assert "ADD" not in dict(instructions())


def test_oci_labels_and_environment() -> None:
    text = DOCKERFILE.read_text()
    for label in ("title", "description", "version", "revision", "created", "licenses", "source"):
        assert f"org.opencontainers.image.{label}=" in text
    for env in (
        "AUTH_DATA_DIR=/var/lib/auth-service",
        "PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus",
        "AUTH_SERVER__MANAGEMENT_PORT=9000",
        "AUTH_SERVER__PORT=8000",
    ):
        assert env in text
    # The data directory is created for the service's user; everything else is read-only.
    assert "install -d -o 10001 -g 10001" in text


def test_build_context_is_deny_by_default() -> None:
    lines = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    for word, args in instructions():
        if word == "COPY" and not args.startswith("--from"):
            sources = [a for a in args.split() if not a.startswith("--")][:-1]
            for src in sources:
                assert src.rstrip("*/") in allowed or src == "README.md*", f"COPY {src} is ignored"
    for secret_like in (".env", "var", ".venv", ".tools", ".git"):
        assert secret_like not in allowed


def test_cli_provides_what_the_image_calls() -> None:
    """HEALTHCHECK and the default CMD use commands the CLI really has."""
    from typer.testing import CliRunner

    from auth_service.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "migrate", "healthcheck"):
        assert command in result.output
    # Nothing listens on port 1: the probe reports unhealthy with exit 1, quickly.
    result = runner.invoke(
        app, ["healthcheck", "--probe", "ready", "--url", "http://127.0.0.1:1/health/ready"]
    )
    assert result.exit_code == 1


# ---- entrypoint ------------------------------------------------------------------------------

FAKE = """#!/bin/sh
# Stand-in for the real CLI: reports how it was started, then behaves as asked.
dir="${PROMETHEUS_MULTIPROC_DIR:-}"
files=""
[ -n "$dir" ] && [ -d "$dir" ] && files="$(ls -A "$dir" | tr '\\n' ' ')"
exists=false
[ -n "$dir" ] && [ -d "$dir" ] && exists=true
printf '{"argv": "%s", "pid": %s, "umask": "%s", ' "$*" "$$" "$(umask)" > "$FAKE_REPORT"
printf '"multiproc_files": "%s", ' "$files" >> "$FAKE_REPORT"
printf '"multiproc_exists": %s}\\n' "$exists" >> "$FAKE_REPORT"
case "${FAKE_MODE:-}" in
  exit3) exit 3 ;;
  wait) trap 'echo term >> "$FAKE_REPORT.signals"; exit 0' TERM; echo ready > "$FAKE_REPORT.ready"
        while :; do sleep 0.05; done ;;
esac
"""


@pytest.fixture
def sandbox() -> Iterator[Path]:
    # Below /tmp on purpose: the entrypoint only clears a metrics directory under /tmp.
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="auth-entrypoint-") as d:
        root = Path(d)
        (root / "bin").mkdir()
        fake = root / "bin" / "auth-service"
        fake.write_text(FAKE)
        fake.chmod(0o755)
        yield root


def run_entrypoint(
    sandbox: Path, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, object] | None]:
    report = sandbox / "report.json"
    report.unlink(missing_ok=True)
    full_env = {
        "PATH": f"{sandbox / 'bin'}:/usr/bin:/bin",
        "FAKE_REPORT": str(report),
        "AUTH_DATA_DIR": str(sandbox / "data"),
        **env,
    }
    proc = subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc, (json.loads(report.read_text()) if report.exists() else None)


def stale_metrics(sandbox: Path) -> Path:
    d = sandbox / "prometheus"
    d.mkdir()
    (d / "counter_123.db").write_text("stale")
    return d


def test_no_arguments_serves_and_starts_with_an_empty_metrics_dir(sandbox: Path) -> None:
    metrics = stale_metrics(sandbox)
    proc, report = run_entrypoint(sandbox, PROMETHEUS_MULTIPROC_DIR=str(metrics))
    assert proc.returncode == 0, proc.stderr
    assert report == {
        "argv": "serve",
        "pid": report["pid"],
        "umask": "0027",
        "multiproc_files": "",
        "multiproc_exists": True,
    }
    assert (sandbox / "data").is_dir(), "the data dir is created"


def test_global_options_before_serve_are_passed_through(sandbox: Path) -> None:
    metrics = stale_metrics(sandbox)
    _, report = run_entrypoint(
        sandbox,
        "--config",
        "/etc/auth-service/config.yaml",
        "serve",
        "--workers",
        "4",
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
    )
    assert report is not None
    assert report["argv"] == "--config /etc/auth-service/config.yaml serve --workers 4"
    assert report["multiproc_files"] == ""


def test_one_off_commands_leave_the_live_metrics_alone(sandbox: Path) -> None:
    metrics = stale_metrics(sandbox)
    _, report = run_entrypoint(
        sandbox,
        "users",
        "create",
        "--email",
        "serve@example.com",
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
    )
    assert report is not None
    assert report["argv"] == "users create --email serve@example.com"
    assert (metrics / "counter_123.db").exists()


@pytest.mark.parametrize(
    "bad",
    ["/var/lib/auth-service", "/tmp", "/tmp/../etc", "relative/dir"],  # noqa: S108 - container paths
)
def test_refuses_to_wipe_a_metrics_dir_outside_tmp(sandbox: Path, bad: str) -> None:
    proc, report = run_entrypoint(sandbox, "serve", PROMETHEUS_MULTIPROC_DIR=bad)
    assert proc.returncode == 64
    assert report is None, "the service must not start"
    assert "PROMETHEUS_MULTIPROC_DIR" in proc.stderr


def test_other_programs_run_as_given(sandbox: Path) -> None:
    proc = subprocess.run(
        ["sh", str(ENTRYPOINT), "sh", "-c", "echo hello"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.stdout == "hello\n"


def test_exit_status_is_the_services(sandbox: Path) -> None:
    proc, _ = run_entrypoint(sandbox, "migrate", FAKE_MODE="exit3")
    assert proc.returncode == 3


def test_unwritable_data_dir_warns_but_starts(sandbox: Path) -> None:
    proc, report = run_entrypoint(sandbox, "serve", AUTH_DATA_DIR="/proc/auth-service-data")
    assert report is not None
    assert proc.returncode == 0
    assert '"level":"warning"' in proc.stderr
    assert "AUTH_DATA_DIR" in proc.stderr


def test_the_service_replaces_the_script_and_receives_sigterm(sandbox: Path) -> None:
    """exec: the service is the process tini starts and signals, not a child of a shell."""
    report = sandbox / "report.json"
    env = {
        "PATH": f"{sandbox / 'bin'}:/usr/bin:/bin",
        "FAKE_REPORT": str(report),
        "FAKE_MODE": "wait",
        "AUTH_DATA_DIR": str(sandbox / "data"),
    }
    proc = subprocess.Popen(["sh", str(ENTRYPOINT), "serve"], env=env)
    try:
        deadline = time.monotonic() + 20
        while not (sandbox / "report.json.ready").exists():
            assert time.monotonic() < deadline, "the stand-in never started"
            time.sleep(0.05)
        assert json.loads(report.read_text())["pid"] == proc.pid
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert (sandbox / "report.json.signals").read_text() == "term\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_entrypoint_is_posix_sh() -> None:
    # /bin/sh in the image is dash: no bashisms.
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True)
    if Path("/bin/dash").exists():
        subprocess.run(["/bin/dash", "-n", str(ENTRYPOINT)], check=True)
