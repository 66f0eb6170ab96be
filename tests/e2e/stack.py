"""Pieces of the end-to-end alerting test: the project's monitoring/ configuration copied with
only addresses and intervals overridden, a TCP proxy that can take the database away, and a
webhook sink standing in for Slack/PagerDuty.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

import yaml

from tests.support.loopback import LoopbackServer, QuietHandler, reply
from tests.support.net import free_port
from tests.support.wait import NotInTime, wait_for

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"


# ---- configuration rewriting -----------------------------------------------------------------


def rewrite_prometheus(
    target_dir: Path,
    *,
    service: str,
    alertmanager: str,
    prometheus: str,
    interval: str = "1s",
    rule_for: str = "5s",
) -> Path:
    """Copy monitoring/prometheus/ with the scrape targets and intervals replaced.

    Only addresses, scrape/evaluation intervals and the rules' ``for`` durations change; the
    expressions, labels and annotations are the project's own.
    """
    source = MONITORING / "prometheus"
    config = yaml.safe_load((source / "prometheus.yml").read_text())
    config["global"].update(
        {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval}
    )
    config["global"].pop("external_labels", None)
    addresses = {"auth-service": service, "alertmanager": alertmanager, "prometheus": prometheus}
    for am in config["alerting"]["alertmanagers"]:
        for static in am.get("static_configs", []):
            static["targets"] = [alertmanager]
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] not in addresses:
            continue
        # Whatever discovery the deployment uses (DNS, Kubernetes), here it is one address.
        for key in [k for k in job if k.endswith("_sd_configs") or k == "static_configs"]:
            del job[key]
        job["static_configs"] = [{"targets": [addresses[job["job_name"]]]}]
        jobs.append(job)
    config["scrape_configs"] = jobs
    (target_dir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    rules = target_dir / "rules"
    rules.mkdir(exist_ok=True)
    for path in (source / "rules").glob("*.yml"):
        data = yaml.safe_load(path.read_text())
        for group in data.get("groups", []):
            group.pop("interval", None)
            for rule in group.get("rules", []):
                if "for" in rule:
                    rule["for"] = rule_for
        (rules / path.name).write_text(yaml.safe_dump(data, sort_keys=False))
    return target_dir / "prometheus.yml"


def rewrite_alertmanager(
    target_dir: Path, *, webhook: str, wait: str = "1s", smtp: str = "127.0.0.1:1"
) -> Path:
    """Copy monitoring/alertmanager/ with loopback addresses and short grouping intervals.

    Secret files and templates move under ``target_dir``; the Slack webhook URL (a secret file)
    and the PagerDuty events URL point at ``webhook``/slack and ``webhook``/pagerduty, mail goes
    to the SMTP server at ``smtp`` (host:port; by default nothing listens there).
    """
    source = MONITORING / "alertmanager"
    text = (source / "alertmanager.yml").read_text().replace("/etc/alertmanager/", f"{target_dir}/")
    config = yaml.safe_load(text)
    secrets = target_dir / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "slack_webhook_url").write_text(f"{webhook}/slack")
    (secrets / "pagerduty_routing_key").write_text("e2e-routing-key-0000000000000000")
    (secrets / "smtp_password").write_text("e2e-smtp-password")
    shutil.copytree(source / "templates", target_dir / "templates", dirs_exist_ok=True)
    config["global"]["smtp_smarthost"] = smtp
    config["global"]["smtp_require_tls"] = False

    def shorten(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = wait
        for child in route.get("routes", []):
            shorten(child)

    config["route"]["group_interval"] = wait
    config["route"]["group_wait"] = wait
    shorten(config["route"])
    for receiver in config["receivers"]:
        for pd in receiver.get("pagerduty_configs", []):
            pd["url"] = f"{webhook}/pagerduty"
        for slack in receiver.get("slack_configs", []):
            slack.pop("api_url", None)  # the global api_url_file (a secret file) names us
    path = target_dir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# ---- TCP proxy -------------------------------------------------------------------------------


class TcpProxy:
    """Forwards a loopback port to an upstream; ``stop()`` takes the upstream away entirely
    (listener closed, every open connection reset) and ``start()`` brings it back."""

    def __init__(self, upstream: tuple[str, int], port: int | None = None) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


# ---- webhook sink ----------------------------------------------------------------------------


class WebhookSink:
    """Records every notification Alertmanager posts, by path (/slack, /pagerduty)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink._lock:
                    sink.received.append((self.path, json.loads(body or b"{}")))
                reply(
                    self,
                    202 if self.path.startswith("/pagerduty") else 200,
                    b'{"status":"success","message":"Event processed","dedup_key":"x"}',
                    "application/json",
                )

        self._server = LoopbackServer(Handler)
        self._server.start()

    @property
    def url(self) -> str:
        return self._server.url

    def find(self, path: str, pattern: str) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self.received)
        rx = re.compile(pattern)
        return [body for p, body in items if p == path and rx.search(json.dumps(body))]

    def wait_for(self, path: str, pattern: str, timeout: float) -> dict[str, Any]:
        try:
            found = wait_for(lambda: self.find(path, pattern), timeout, interval=0.2)
        except NotInTime:
            with self._lock:
                seen = [(p, json.dumps(b)[:300]) for p, b in self.received]
            raise NotInTime(
                f"no {path} notification matching {pattern!r}; received {seen}"
            ) from None
        return found[0]

    def close(self) -> None:
        self._server.close()
