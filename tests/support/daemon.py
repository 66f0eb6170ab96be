"""A server process a test starts (Prometheus, Alertmanager, redis-server), ready when its
URL answers, stopped however the test ends."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.net import wait_ready


class Daemon:
    def __init__(self, name: str, args: list[str], log: Path, ready_url: str) -> None:
        self.name = name
        self.args = args
        self.log = log
        self.ready_url = ready_url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Daemon:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            ready = wait_ready(self.process, self.ready_url, timeout)
        except AssertionError:
            raise AssertionError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}") from None
        if not ready:
            self.stop()
            raise AssertionError(f"{self.name} not ready:\n{self.log.read_text()[-3000:]}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
