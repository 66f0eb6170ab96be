"""AES-256-GCM sealing of secrets at rest under the master key."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
KEY_BYTES = 32
_VERSION = b"\x01"


class MasterKeyError(Exception):
    """The master key is missing, malformed, or does not open what it should."""


@dataclass(frozen=True)
class MasterKey:
    key: bytes
    development: bool = False

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise MasterKeyError("master key must be 32 bytes (base64url encoded)")

    @property
    def key_id(self) -> str:
        """A short, public fingerprint naming the key (not derived reversibly from it)."""
        return hashlib.sha256(b"auth-service master key id\x00" + self.key).hexdigest()[:16]

    @classmethod
    def from_text(cls, text: str, *, development: bool = False) -> MasterKey:
        raw = text.strip()
        try:
            key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        except (ValueError, TypeError):
            raise MasterKeyError("master key is not valid base64url") from None
        return cls(key, development=development)

    @staticmethod
    def generate_text() -> str:
        return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (HKDF-SHA256, RFC 5869), so the master key itself
        never signs or MACs anything but the seals above."""
        return HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES,
            salt=None,
            info=b"auth-service/" + purpose.encode(),
        ).derive(self.key)

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return _VERSION + nonce + AESGCM(self.key).encrypt(nonce, plaintext, associated_data)

    def open(self, sealed: bytes, associated_data: bytes) -> bytes:
        if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != _VERSION:
            raise MasterKeyError("sealed value is malformed")
        nonce = sealed[1 : 1 + NONCE_BYTES]
        try:
            return AESGCM(self.key).decrypt(nonce, sealed[1 + NONCE_BYTES :], associated_data)
        except InvalidTag:
            raise MasterKeyError(
                "cannot decrypt with this master key (wrong key, or the data was altered)"
            ) from None


DEV_KEY_FILE = "master.key"


def load_or_create_development_key(data_dir: Path) -> MasterKey:
    """The embedded default's key: generated once into data_dir with mode 0600."""
    path = data_dir / DEV_KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Write aside, then link into place: atomic, and a concurrent worker that lost the
        # race simply reads the winner's key.
        tmp = data_dir / f".{DEV_KEY_FILE}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(MasterKey.generate_text() + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return MasterKey.from_text(path.read_text(), development=True)
