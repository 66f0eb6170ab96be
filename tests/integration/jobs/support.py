"""Real processes and a real SMTP server for the job queue's multi-process tests.

``Receiver`` is an aiosmtpd server that keeps every message it accepted (it answered 250 to
DATA) and can hold the first conversation at a chosen step (before accepting: at DATA;
after accepting: at QUIT) until the test releases it, so a test can SIGKILL the worker
that is inside that conversation at a known point. ``WorkerProcess`` is `auth-service jobs
work` in its own process group, logs to a file.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

import asyncpg
from aiosmtpd.controller import Controller

from tests.support.net import free_port
from tests.support.server import CLI

Hold = Literal["DATA", "QUIT"]


class Receiver:
    """Accepted messages, in order; ``hold`` stops the first conversation at that step."""

    def __init__(self, port: int | None = None, hold: Hold | None = None) -> None:
        self.port = port or free_port()
        self.hold = hold
        self.held = threading.Event()  # a conversation is waiting at the hold
        self.release = threading.Event()
        self._accepted: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    @property
    def accepted(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._accepted)

    async def _wait_here(self, step: Hold) -> bool:
        if self.hold != step or self.held.is_set():
            return False
        self.held.set()
        await asyncio.to_thread(self.release.wait)
        return True

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if await self._wait_here("DATA"):
            # The client was killed before we answered: nothing was accepted.
            return "451 4.3.0 aborted"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._accepted.append(message)
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        await self._wait_here("QUIT")
        return "221 Bye"

    def start(self) -> Receiver:
        self._controller.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._controller.stop()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *_exc: Any) -> None:
        self.stop()


def smtp_env(port: int) -> dict[str, str]:
    return {
        "AUTH_MAIL__BACKEND": "smtp",
        "AUTH_MAIL__SMTP_HOST": "127.0.0.1",
        "AUTH_MAIL__SMTP_PORT": str(port),
        "AUTH_MAIL__SMTP_STARTTLS": "false",
        "AUTH_MAIL__SMTP_TIMEOUT_SECONDS": "5",
        "AUTH_MAIL__FROM_ADDRESS": "auth-service <no-reply@auth.example>",
    }


class WorkerProcess:
    """`auth-service jobs work`, ready once it printed its banner."""

    def __init__(self, tmp: Path, env: dict[str, str], name: str) -> None:
        self.log_path = tmp / f"jobs-work-{name}.log"
        self.env = env
        self.tmp = tmp
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 60.0) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [CLI, "jobs", "work"],
                cwd=self.tmp,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: "jobs worker " in self.logs(), ready_timeout, self.check_alive)
        return self

    def check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"jobs work exited {self.process.returncode}:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self, sig: signal.Signals = signal.SIGKILL, timeout: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        return self.process.wait(timeout=timeout)

    def __exit__(self, *_exc: Any) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()

    def __enter__(self) -> WorkerProcess:
        return self.start()


def wait_for(
    condition: Callable[[], bool], timeout: float, check: Callable[[], None] = lambda: None
) -> None:
    """Poll ``condition`` (a state some process reaches) until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        check()
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s: {condition}")
        time.sleep(0.05)


def jobs_table(dsn: str) -> list[dict[str, Any]]:
    """Every row of the jobs table (test process; plain asyncpg)."""

    async def read() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT id, kind, state, attempts, last_error, locked_by FROM jobs"
            )
        finally:
            await conn.close()
        return [dict(r) for r in rows]

    return asyncio.run(read())
