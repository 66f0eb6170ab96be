"""`auth-service jobs ...` as an operator runs it (docs/operations/jobs.md), on SQLite and
PostgreSQL: list the dead letters, show one, retry it and let a separate worker deliver it,
discard another (dry run first), and one-line errors for what cannot be done."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from auth_service.config.settings import Settings
from auth_service.jobs.kinds import JobState
from auth_service.mail.service import MAIL_KIND
from auth_service.services import build_services
from tests.support.settings import TEST_MASTER_KEY, make_settings

SCRIPT = Path(sys.executable).parent / "auth-service"


def _jobs(tmp_path: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    env.update(
        AUTH_DATA_DIR=str(tmp_path / "data"),
        AUTH_DATABASE__URL=database_url,
        AUTH_MASTER_KEY=TEST_MASTER_KEY,  # the servers' key: sealed payloads open with it
        COLUMNS="250",
        NO_COLOR="1",
    )
    result = subprocess.run(
        [str(SCRIPT), "jobs", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _side_by_side(
    tmp_path: Path, database_url: str, *calls: tuple[str, ...]
) -> list[subprocess.CompletedProcess[str]]:
    """Independent invocations at once: each pays the interpreter's start-up."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda args: _jobs(tmp_path, database_url, *args), calls))


async def _mail_jobs(settings: Settings, *recipients: str, dead: bool = True) -> list[uuid.UUID]:
    """Mail jobs, dead (failed for good, as after a 5xx) or queued; no worker or server."""
    services = build_services(settings)
    try:
        ids = [await services.mail.send(to, "Welcome", f"Hello {to}") for to in recipients]
        if dead:
            for job in await services.jobs.claim("test", limit=len(recipients)):
                state = await services.jobs.fail(job, "test", "SMTP 550", permanent=True)
                assert state is JobState.dead
        return ids
    finally:
        await services.close()


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_dead_letters_listed_shown_retried_worked_and_discarded(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url)
    retried, discarded = await _mail_jobs(settings, "retry@example.com", "discard@example.com")

    listed, table, shown = _side_by_side(
        tmp_path,
        database_url,
        ("list", "--state", "dead", "--format", "json"),
        ("list", "--state", "dead"),
        ("show", str(retried), "--format", "json"),
    )
    assert _json(listed)["total"] == 2
    assert {j["id"] for j in _json(listed)["items"]} == {str(retried), str(discarded)}
    assert str(retried) in table.stdout
    assert "2 of 2 jobs" in table.stdout
    job = _json(shown)
    assert (job["kind"], job["state"], job["last_error"]) == (MAIL_KIND, "dead", "SMTP 550")
    assert (job["sealed"], job["payload"]) == (True, None)
    assert "retry@example.com" not in shown.stdout

    result = _jobs(tmp_path, database_url, "retry", str(retried))
    assert result.returncode == 0, result.stderr
    assert "is queued again" in result.stdout
    result = _jobs(tmp_path, database_url, "work", "--until-idle")
    assert result.returncode == 0, result.stderr
    (eml,) = (tmp_path / "data" / "outbox").glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert message["To"] == "retry@example.com"

    dry = _jobs(tmp_path, database_url, "discard", str(discarded))
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout
    result = _jobs(tmp_path, database_url, "discard", str(discarded), "--confirm")
    assert result.returncode == 0, result.stderr
    listed = _json(_jobs(tmp_path, database_url, "list", "--format", "json"))
    assert {j["id"]: (j["state"], j["attempts"]) for j in listed["items"]} == {
        str(retried): ("done", 1),
        str(discarded): ("discarded", 1),
    }


async def test_what_cannot_be_done_is_one_line_on_stderr(tmp_path: Path, database_url: str) -> None:
    (queued,) = await _mail_jobs(make_settings(tmp_path, database_url), "x@example.com", dead=False)
    calls = {
        ("retry", str(queued)): "the job is queued, not dead",
        ("discard", str(queued), "--confirm"): "the job is queued, not dead",
        ("show", str(uuid.uuid4())): "no such job",
    }
    results = _side_by_side(tmp_path, database_url, *calls)
    for (args, needle), result in zip(calls.items(), results, strict=True):
        assert result.returncode == 1, (args, result)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"error: {needle}"), lines
