"""The sealed object format: round trip, and every kind of damage named."""

from __future__ import annotations

import os
import secrets
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auth_service.backup import crypto
from auth_service.backup.errors import CorruptObject, MissingKey, WrongKey

CHUNK = 4096


def keyring(*previous: bytes) -> crypto.Keyring:
    return crypto.Keyring(os.urandom(32), previous)


def seal(ring: crypto.Keyring, data: bytes, chunk: int = CHUNK) -> bytes:
    sealer = crypto.Sealer(ring, chunk_size=chunk, level=1)
    out = sealer.header
    for i in range(0, len(data), 1000):
        out += sealer.update(data[i : i + 1000])
    return out + sealer.finish()


def open_all(ring: crypto.Keyring, blob: bytes, piece: int = 777) -> bytes:
    opener = crypto.Opener(ring, "backups/x/base.tar")
    out = b""
    for i in range(0, len(blob), piece):
        out += opener.update(blob[i : i + piece])
    opener.finish()
    return out


def frames(blob: bytes) -> tuple[bytes, list[bytes]]:
    """Split a sealed object into its header and frames."""
    kid_len = blob[len(crypto.MAGIC)]
    pos = len(crypto.MAGIC) + 1 + kid_len
    (wlen,) = struct.unpack_from(">I", blob, pos)
    pos += 4 + wlen
    header, rest, out = blob[:pos], blob[pos:], []
    while rest:
        (n,) = struct.unpack_from(">I", rest)
        out.append(rest[: 4 + n])
        rest = rest[4 + n :]
    return header, out


def incompressible(n: int) -> bytes:
    return os.urandom(n)


def test_round_trip_many_chunks() -> None:
    ring = keyring()
    data = incompressible(50_000)
    blob = seal(ring, data)
    assert len(frames(blob)[1]) > 5
    assert open_all(ring, blob) == data


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=20_000), st.integers(min_value=1, max_value=5000))
def test_round_trip_any_data_any_split(data: bytes, piece: int) -> None:
    ring = keyring()
    assert open_all(ring, seal(ring, data), piece) == data


def test_compresses() -> None:
    ring = keyring()
    data = b"user@example.com," * 10_000
    assert len(seal(ring, data)) < len(data) / 10


def test_flipped_byte_names_object_and_chunk() -> None:
    ring = keyring()
    blob = bytearray(seal(ring, incompressible(30_000)))
    blob[-100] ^= 0x01
    with pytest.raises(CorruptObject, match=r"backups/x/base.tar.*chunk \d+ failed authentication"):
        open_all(ring, bytes(blob))


def test_truncation_detected() -> None:
    ring = keyring()
    header, fr = frames(seal(ring, incompressible(30_000)))
    with pytest.raises(CorruptObject, match=r"truncated after chunk \d+ \(last chunk missing\)"):
        open_all(ring, header + b"".join(fr[:-1]))
    with pytest.raises(CorruptObject, match="truncated inside chunk"):
        open_all(ring, header + b"".join(fr)[:-10])
    with pytest.raises(CorruptObject, match="truncated inside the header"):
        open_all(ring, header[:10])


def test_reordered_chunks_named() -> None:
    ring = keyring()
    header, fr = frames(seal(ring, incompressible(30_000)))
    fr[1], fr[2] = fr[2], fr[1]
    with pytest.raises(CorruptObject, match=r"chunk 1 holds chunk 2's data \(chunks reordered\)"):
        open_all(ring, header + b"".join(fr))


def test_chunk_from_another_object_rejected() -> None:
    ring = keyring()
    h1, f1 = frames(seal(ring, incompressible(30_000)))
    _, f2 = frames(seal(ring, incompressible(30_000)))
    f1[1] = f2[1]
    with pytest.raises(CorruptObject, match="failed authentication"):
        open_all(ring, h1 + b"".join(f1))


def test_appended_data_rejected() -> None:
    ring = keyring()
    header, fr = frames(seal(ring, incompressible(10_000)))
    with pytest.raises(CorruptObject, match="after the last chunk"):
        open_all(ring, header + b"".join(fr) + fr[0])


def test_wrong_key_says_so() -> None:
    ring = keyring()
    blob = seal(ring, b"secret data")
    other = crypto.Keyring(os.urandom(32))
    # Same key id, different key: someone edited the key file.
    impostor = crypto.Keyring(other.current)
    impostor._keys = {ring.current_id: other.current}
    with pytest.raises(WrongKey, match="different key"):
        open_all(impostor, blob)
    with pytest.raises(MissingKey, match=f"backup key {ring.current_id} is not configured"):
        open_all(other, blob)


def test_rotation_old_key_opens_old_backups() -> None:
    old = os.urandom(32)
    old_ring = crypto.Keyring(old)
    blob = seal(old_ring, b"before rotation")
    new_ring = crypto.Keyring(os.urandom(32), [old])
    assert open_all(new_ring, blob) == b"before rotation"
    assert crypto.Opener(new_ring, "x").key_id is None
    fresh = seal(new_ring, b"after")
    assert crypto.key_id_of(new_ring.current).encode() in fresh[:64]


def test_key_parsing_errors_are_actionable() -> None:
    with pytest.raises(MissingKey, match="no backup key configured"):
        crypto.Keyring.from_text(None)
    with pytest.raises(MissingKey, match="32 random bytes"):
        crypto.Keyring.from_text("too-short")
    good = secrets.token_urlsafe(32)
    assert crypto.Keyring.from_text(good, f"{secrets.token_urlsafe(32)}").ids


def test_not_a_backup_object() -> None:
    with pytest.raises(CorruptObject, match="bad magic"):
        open_all(keyring(), b"PK\x03\x04" + b"\x00" * 100)


async def test_streams_off_loop() -> None:
    ring = keyring()
    data = incompressible(3 * CHUNK + 5)

    async def source():  # type: ignore[no-untyped-def]
        for i in range(0, len(data), 1024):
            yield data[i : i + 1024]

    sealed = b"".join(
        [p async for p in crypto.seal_stream(source(), crypto.Sealer(ring, chunk_size=CHUNK))]
    )

    async def sealed_source():  # type: ignore[no-untyped-def]
        yield sealed

    opened = b"".join(
        [p async for p in crypto.open_stream(sealed_source(), crypto.Opener(ring, "o"))]
    )
    assert opened == data
