"""Encrypted object format: zstd-compressed, AES-256-GCM sealed in authenticated chunks.

An object is ``header || frame*``. The header names the backup key (key id) and carries the
object's data key wrapped by it, so any object opens with the keyring alone. Each frame is a
4-byte big-endian length and one sealed chunk. A chunk's nonce is its index and its associated
data binds the header, the index and a "last chunk" flag: a flipped byte, a reordered chunk, a
chunk from another object and a truncated object each fail authentication, and the reader says
which of them it saw.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from auth_service.backup.errors import CorruptObject, MissingKey, WrongKey

MAGIC = b"AUTHBK1\n"
KEY_BYTES = 32
NONCE_BYTES = 12
DEFAULT_CHUNK = 1024 * 1024
_LEN = struct.Struct(">I")
_MAX_FRAME = 64 * 1024 * 1024
_WRAP_AAD = b"auth-service backup data key\x00"


def key_id_of(key: bytes) -> str:
    """A public fingerprint naming a backup key; recorded in every object and manifest."""
    return hashlib.sha256(b"auth-service backup key id\x00" + key).hexdigest()[:16]


def parse_key(text: str) -> bytes:
    raw = text.strip()
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise MissingKey(
            "backup key must be 32 random bytes in base64url: generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return key


class Keyring:
    """The current backup key (seals new objects) and retired ones (open old objects)."""

    def __init__(self, current: bytes, previous: Iterable[bytes] = ()) -> None:
        self.current = current
        self.current_id = key_id_of(current)
        self._keys = {key_id_of(k): k for k in previous}
        self._keys[self.current_id] = current

    @classmethod
    def from_text(cls, current: str | None, previous: str | None = None) -> Keyring:
        if not current:
            raise MissingKey(
                "no backup key configured: set backup.key (AUTH_BACKUP__KEY_FILE=/path/to/key) "
                "to 32 random bytes in base64url"
            )
        olds = [parse_key(p) for p in (previous or "").replace("\n", ",").split(",") if p.strip()]
        return cls(parse_key(current), olds)

    def key(self, key_id: str) -> bytes:
        try:
            return self._keys[key_id]
        except KeyError:
            raise MissingKey(
                f"backup key {key_id} is not configured: add the retired key to "
                "backup.previous_keys (keys are kept after rotation for old backups)"
            ) from None

    @property
    def ids(self) -> list[str]:
        return sorted(self._keys)


@dataclass(frozen=True)
class WrappedKey:
    key_id: str
    blob: bytes  # nonce || AES-GCM(backup key, data key)

    def encode(self) -> str:
        return base64.b64encode(self.blob).decode()


def wrap(keyring: Keyring, data_key: bytes) -> WrappedKey:
    nonce = os.urandom(NONCE_BYTES)
    aad = _WRAP_AAD + keyring.current_id.encode()
    return WrappedKey(
        keyring.current_id, nonce + AESGCM(keyring.current).encrypt(nonce, data_key, aad)
    )


def unwrap(keyring: Keyring, wrapped: WrappedKey, what: str) -> bytes:
    key = keyring.key(wrapped.key_id)
    try:
        return AESGCM(key).decrypt(
            wrapped.blob[:NONCE_BYTES],
            wrapped.blob[NONCE_BYTES:],
            _WRAP_AAD + wrapped.key_id.encode(),
        )
    except InvalidTag:
        raise WrongKey(
            f"{what}: the data key does not open with backup key {wrapped.key_id}: the key file "
            "holds a different key than the one the backup was made with"
        ) from None


def _header(wrapped: WrappedKey) -> bytes:
    kid = wrapped.key_id.encode()
    return MAGIC + bytes([len(kid)]) + kid + _LEN.pack(len(wrapped.blob)) + wrapped.blob


def _nonce(index: int) -> bytes:
    return b"\x00\x00\x00\x00" + index.to_bytes(8, "big")


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return (
        hashlib.sha256(header).digest() + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")
    )


class Sealer:
    """Compresses and seals one object, chunk by chunk; memory is bounded by the chunk size."""

    def __init__(self, keyring: Keyring, *, chunk_size: int = DEFAULT_CHUNK, level: int = 3):
        self._data_key = os.urandom(KEY_BYTES)
        self._aead = AESGCM(self._data_key)
        self.header = _header(wrap(keyring, self._data_key))
        self.key_id = keyring.current_id
        self._chunk = chunk_size
        # threads=-1: zstd compresses on every core in its own threads (GIL released).
        self._zstd = zstandard.ZstdCompressor(level=level, threads=-1).compressobj()
        self._pending = bytearray()
        self._index = 0
        self.plain_bytes = 0
        self._plain_hash = hashlib.sha256()

    @property
    def plain_sha256(self) -> str:
        return self._plain_hash.hexdigest()

    def _seal(self, data: bytes, last: bool) -> bytes:
        sealed = self._aead.encrypt(_nonce(self._index), data, _aad(self.header, self._index, last))
        self._index += 1
        return _LEN.pack(len(sealed)) + sealed

    def update(self, data: bytes) -> bytes:
        """Feed plaintext; return the frames that are complete."""
        self.plain_bytes += len(data)
        self._plain_hash.update(data)
        self._pending += self._zstd.compress(data)
        out = bytearray()
        # Keep at least one chunk back so the last frame can carry the "last" flag.
        while len(self._pending) > self._chunk:
            out += self._seal(bytes(self._pending[: self._chunk]), last=False)
            del self._pending[: self._chunk]
        return bytes(out)

    def finish(self) -> bytes:
        self._pending += self._zstd.flush()
        out = bytearray()
        while len(self._pending) > self._chunk:
            out += self._seal(bytes(self._pending[: self._chunk]), last=False)
            del self._pending[: self._chunk]
        out += self._seal(bytes(self._pending), last=True)
        self._pending.clear()
        return bytes(out)


class Opener:
    """Authenticates, decrypts and decompresses one object fed in arbitrary pieces."""

    def __init__(self, keyring: Keyring, name: str) -> None:
        self._keyring = keyring
        self.name = name
        self._buf = bytearray()
        self._header: bytes | None = None
        self._aead: AESGCM | None = None
        self._index = 0
        self._done = False
        self._zstd = zstandard.ZstdDecompressor().decompressobj()
        self.key_id: str | None = None

    def _corrupt(self, what: str) -> CorruptObject:
        return CorruptObject(
            f"object {self.name} is damaged: {what}; restore from another copy "
            "(a DR destination) or an older backup"
        )

    def _read_header(self) -> bool:
        fixed = len(MAGIC) + 1
        if len(self._buf) < fixed:
            return False
        if bytes(self._buf[: len(MAGIC)]) != MAGIC:
            raise self._corrupt("not a backup object (bad magic)")
        kid_len = self._buf[len(MAGIC)]
        need = fixed + kid_len + _LEN.size
        if len(self._buf) < need:
            return False
        (blob_len,) = _LEN.unpack_from(self._buf, fixed + kid_len)
        if blob_len > 256:
            raise self._corrupt("header is malformed")
        if len(self._buf) < need + blob_len:
            return False
        try:
            key_id = bytes(self._buf[fixed : fixed + kid_len]).decode("ascii")
        except UnicodeDecodeError:
            raise self._corrupt("header is malformed") from None
        header = bytes(self._buf[: need + blob_len])
        wrapped = WrappedKey(key_id, header[need:])
        data_key = unwrap(self._keyring, wrapped, f"object {self.name}")
        self.key_id = key_id
        self._header = header
        self._aead = AESGCM(data_key)
        del self._buf[: need + blob_len]
        return True

    def _try_open(self, sealed: bytes, index: int, last: bool) -> bytes | None:
        assert self._aead is not None
        assert self._header is not None
        try:
            return self._aead.decrypt(_nonce(index), sealed, _aad(self._header, index, last))
        except InvalidTag:
            return None

    def _diagnose(self, sealed: bytes) -> CorruptObject:
        # Tell the operator what happened: a chunk from elsewhere in the object means the
        # chunks were reordered; nothing matching means the bytes were altered.
        for other in range(max(0, self._index - 64), self._index + 64):
            for last in (False, True):
                if other != self._index and self._try_open(sealed, other, last) is not None:
                    return self._corrupt(
                        f"chunk {self._index} holds chunk {other}'s data (chunks reordered)"
                    )
        return self._corrupt(f"chunk {self._index} failed authentication (altered bytes)")

    def update(self, data: bytes) -> bytes:
        self._buf += data
        if self._header is None and not self._read_header():
            return b""
        out = bytearray()
        while len(self._buf) >= _LEN.size:
            (length,) = _LEN.unpack_from(self._buf)
            if length > _MAX_FRAME or length < 16:
                raise self._corrupt(f"chunk {self._index} has an impossible length")
            if len(self._buf) < _LEN.size + length:
                break
            if self._done:
                raise self._corrupt(f"data after the last chunk (chunk {self._index})")
            sealed = bytes(self._buf[_LEN.size : _LEN.size + length])
            del self._buf[: _LEN.size + length]
            plain = self._try_open(sealed, self._index, last=False)
            if plain is None:
                plain = self._try_open(sealed, self._index, last=True)
                if plain is None:
                    raise self._diagnose(sealed)
                self._done = True
            self._index += 1
            try:
                out += self._zstd.decompress(plain)
            except zstandard.ZstdError as exc:
                raise self._corrupt(
                    f"chunk {self._index - 1} does not decompress ({exc})"
                ) from None
        return bytes(out)

    def finish(self) -> None:
        if self._header is None:
            raise self._corrupt("truncated inside the header")
        if self._buf:
            raise self._corrupt(f"truncated inside chunk {self._index}")
        if not self._done:
            raise self._corrupt(f"truncated after chunk {self._index - 1} (last chunk missing)")


async def seal_stream(
    source: AsyncIterable[bytes], sealer: Sealer, *, batch: int = 4 * 1024 * 1024
) -> AsyncIterator[bytes]:
    """Seal an async byte stream; the CPU work runs in a thread, off the event loop."""
    import asyncio

    yield sealer.header
    pending: list[bytes] = []
    size = 0
    async for piece in source:
        pending.append(piece)
        size += len(piece)
        if size >= batch:
            data = b"".join(pending)
            pending.clear()
            size = 0
            out = await asyncio.to_thread(sealer.update, data)
            if out:
                yield out
    if pending:
        out = await asyncio.to_thread(sealer.update, b"".join(pending))
        if out:
            yield out
    yield await asyncio.to_thread(sealer.finish)


async def open_stream(source: AsyncIterable[bytes], opener: Opener) -> AsyncIterator[bytes]:
    """Authenticate and decrypt an async stream of sealed bytes, off the event loop."""
    import asyncio

    async for piece in source:
        out = await asyncio.to_thread(opener.update, piece)
        if out:
            yield out
    opener.finish()
