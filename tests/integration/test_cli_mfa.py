"""`auth-service users reset-mfa`: an operator removes a user's second factors; the user is
mailed, an unknown email is a one-line error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.mail import decode_mail

SCRIPT = Path(sys.executable).parent / "auth-service"
PASSWORD = "Tr0ub4dor&3-horse"


def _cli(args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None) -> Any:
    result = subprocess.run(
        [str(SCRIPT), *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


def test_reset_mfa(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    env.update(AUTH_DATA_DIR=str(tmp_path / "data"), COLUMNS="250", NO_COLOR="1")
    assert _cli(["migrate"], env, tmp_path).returncode == 0
    made = _cli(
        ["users", "create", "--email", "ada@example.com", "--password-stdin"],
        env,
        tmp_path,
        stdin=PASSWORD + "\n",
    )
    assert made.returncode == 0, made.stderr
    reset = _cli(["users", "reset-mfa", "--email", "Ada@Example.com"], env, tmp_path)
    assert reset.returncode == 0, reset.stderr
    assert "reset the second factors of ada@example.com" in reset.stdout
    mails = [decode_mail(p.read_bytes()) for p in (tmp_path / "data" / "outbox").glob("*.eml")]
    assert any("Your second factors were reset" in m for m in mails)
    unknown = _cli(["users", "reset-mfa", "--email", "nobody@example.com"], env, tmp_path)
    assert unknown.returncode != 0
    lines = [line for line in unknown.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: no account with email 'nobody@example.com'; "
        "`auth-service users list --email PART` shows which exist"
    ]
