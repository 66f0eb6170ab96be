"""server.tls is validated with the rest of the configuration: both files or neither,
readable, a certificate and its key; `serve` refuses a bad pair with one clear line."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import cli_environment, run_cli
from tests.support.tls import issue_certificate, self_signed_certificate


def _check(tmp_path: Path, **tls: str) -> tuple[int, str]:
    env = cli_environment(tmp_path / "data")
    env.update({f"AUTH_SERVER__TLS__{k.upper()}": v for k, v in tls.items()})
    result = run_cli(["serve", "--port", "1", "--management-port", "2"], env, tmp_path)
    return result.returncode, result.stderr


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    cert, _key = self_signed_certificate(tmp_path, 30)
    code, stderr = _check(tmp_path, cert_path=str(cert))
    assert code == 2
    assert "server.tls.cert_path and server.tls.key_path go together" in stderr


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    cert, _key = self_signed_certificate(tmp_path, 30)
    code, stderr = _check(tmp_path, cert_path=str(cert), key_path=str(tmp_path / "absent.key"))
    assert code == 2
    assert "key_path" in stderr
    assert "absent.key cannot be read" in stderr


def test_a_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    ca = self_signed_certificate(tmp_path, 30, name="test-ca")
    cert, _key = issue_certificate(tmp_path, ca, tag="one")
    _cert, other_key = issue_certificate(tmp_path, ca, tag="two")
    code, stderr = _check(tmp_path, cert_path=str(cert), key_path=str(other_key))
    assert code == 2
    assert "are not a PEM certificate chain and its private key" in stderr
    assert "KEY_VALUES_MISMATCH" in stderr.replace("\n", " ") or "mismatch" in stderr.lower()


def test_a_malformed_sentinel_url_is_refused_without_its_password(tmp_path: Path) -> None:
    env = cli_environment(tmp_path / "data")
    env["AUTH_REDIS__URL"] = "redis+sentinel://:hunter2-secret@s1:26379"  # no service name
    result = run_cli(["serve", "--port", "1", "--management-port", "2"], env, tmp_path)
    assert result.returncode == 2
    assert "a Sentinel URL is redis+sentinel://host:port" in result.stderr
    assert "hunter2-secret" not in result.stderr + result.stdout
