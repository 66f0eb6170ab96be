"""Certificates a test generates for its own TLS servers (nothing from the machine's store)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed_certificate(
    directory: Path, days: int, name: str = "localhost", ips: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """A self-signed CA certificate for ``name`` (and ``ips``) valid for ``days``; the paths
    of the certificate and its key (PEM). Trusting the certificate trusts the server."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = _certificate(subject, subject, key, key, name, ips, days, ca=True)
    return _write(cert, key, directory / f"{name}-{days}.pem", directory / f"{name}-{days}.key")


def _certificate(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    name: str,
    ips: tuple[str, ...],
    days: int,
    *,
    ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(name)]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


def _write(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, cert_path: Path, key_path: Path
) -> tuple[Path, Path]:
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def issue_certificate(
    directory: Path,
    ca: tuple[Path, Path],
    name: str = "localhost",
    ips: tuple[str, ...] = ("127.0.0.1",),
    days: int = 30,
    tag: str = "leaf",
) -> tuple[Path, Path]:
    """A server certificate for ``name`` (and ``ips``) signed by ``ca`` (the certificate and
    key paths of ``self_signed_certificate``); the paths of the new certificate and key."""
    ca_cert = x509.load_pem_x509_certificate(ca[0].read_bytes())
    ca_key = serialization.load_pem_private_key(ca[1].read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = _certificate(subject, ca_cert.subject, key, ca_key, name, ips, days, ca=False)
    return _write(cert, key, directory / f"{tag}-{name}.pem", directory / f"{tag}-{name}.key")


def served_certificate(host: str, port: int) -> x509.Certificate:
    """The certificate a TLS server on ``host:port`` presents to a new connection."""
    import ssl

    pem = ssl.get_server_certificate((host, port), timeout=5)
    return x509.load_pem_x509_certificate(pem.encode())
