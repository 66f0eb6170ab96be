"""HTTPS on both listeners of a real `auth-service serve`, and a certificate rotated on disk
picked up without a restart while a connection opened before keeps working (ADR 0310)."""

from __future__ import annotations

import http.client
import os
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support.server import CLI, Server, base_env, migrate, postgres_database
from tests.support.services import sqlalchemy_url
from tests.support.tls import issue_certificate, self_signed_certificate, served_certificate
from tests.support.wait import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def _trusting(*cas: Path) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for ca in cas:
        context.load_verify_locations(cafile=ca)
    return context


def _serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def _replace(src: Path, dst: Path) -> None:
    """Swap a file in atomically, as a secret mount or `mv` would."""
    tmp = dst.with_suffix(".new")
    tmp.write_bytes(src.read_bytes())
    os.replace(tmp, dst)


def _healthcheck(url: str, cafile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "healthcheck", "--probe", "ready", "--url", url, "--cafile", str(cafile)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_https_on_both_listeners_and_rotation_without_restart(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old_ca = self_signed_certificate(tmp_path / "old", 30, name="old-ca")
    new_ca = self_signed_certificate(tmp_path / "new", 30, name="new-ca")
    old_leaf = issue_certificate(tmp_path / "old", old_ca)
    new_leaf = issue_certificate(tmp_path / "new", new_ca)
    # The paths the server is configured with: the old pair now, the new one swapped in.
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    _replace(old_leaf[0], cert_path)
    _replace(old_leaf[1], key_path)

    with postgres_database() as dsn:
        env = base_env(
            tmp_path,
            sqlalchemy_url(dsn),
            AUTH_SERVER__TLS__CERT_PATH=str(cert_path),
            AUTH_SERVER__TLS__KEY_PATH=str(key_path),
            AUTH_SERVER__TLS__RELOAD_INTERVAL_SECONDS="0.5",
        )
        migrate(tmp_path, env)
        with Server(tmp_path, env, workers=2, ca_file=old_ca[0]) as server:
            ports = (server.port, server.management_port)
            for port in ports:
                assert served_certificate("127.0.0.1", port).serial_number == _serial(old_leaf[0])
            # Plain HTTP is not served next to HTTPS.
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{server.port}/v1/auth/login", timeout=5)
            api = httpx.get(f"{server.url}/.well-known/jwks.json", verify=server.verify)
            assert api.status_code == 200, api.text
            assert _healthcheck(f"{server.management_url}/health/ready", old_ca[0]).returncode == 0

            # A keep-alive connection opened before the rotation.
            before = http.client.HTTPSConnection(
                "127.0.0.1", server.port, context=_trusting(old_ca[0]), timeout=10
            )
            before.request("GET", "/.well-known/jwks.json")
            assert before.getresponse().read()
            assert before.sock is not None
            sock = before.sock

            # Rotate: certificate first, key a moment later (a mismatched pair in between
            # must not break the listener).
            _replace(new_leaf[0], cert_path)
            _replace(new_leaf[1], key_path)

            def every_new_connection_gets_the_new_certificate() -> bool:
                return all(
                    served_certificate("127.0.0.1", port).serial_number == _serial(new_leaf[0])
                    for port in ports
                    for _ in range(4)  # either worker may answer
                )

            wait_for(every_new_connection_gets_the_new_certificate, 20, "rotated certificate")

            # The connection from before still answers, on the same socket and certificate.
            before.request("GET", "/.well-known/jwks.json")
            response = before.getresponse()
            assert response.status == 200
            assert response.read()
            assert before.sock is sock
            peer = sock.getpeercert(binary_form=True)
            assert peer == x509.load_pem_x509_certificate(old_leaf[0].read_bytes()).public_bytes(
                serialization.Encoding.DER
            )
            before.close()

            # New clients trust the new CA; the old CA no longer verifies the server.
            with httpx.Client(verify=_trusting(new_ca[0])) as client:
                assert client.get(f"{server.url}/.well-known/jwks.json").status_code == 200
                ready = client.get(f"{server.management_url}/health/ready")
                assert ready.status_code == 200, ready.text
            assert _healthcheck(f"{server.management_url}/health/ready", new_ca[0]).returncode == 0
            refused = _healthcheck(f"{server.management_url}/health/ready", old_ca[0])
            assert refused.returncode == 1
            assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr
            logs = server.logs()
            assert "tls_certificate_reloaded" in logs
            assert "Traceback" not in logs
