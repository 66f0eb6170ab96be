"""PostgreSQL's WAL positions and segment names, as the backup and DR code read them."""

from __future__ import annotations

from auth_service.backup.pgtools import lsn_bytes, wal_segment_name


def test_lsn_bytes() -> None:
    assert lsn_bytes("0/0") == 0
    assert lsn_bytes("1/10") == (1 << 32) + 16
    assert lsn_bytes("16/B374D848") - lsn_bytes("16/B374D840") == 8


def test_wal_segment_name() -> None:
    # 16 MiB segments: 256 per 4 GiB "log", the high 32 bits of the LSN.
    assert wal_segment_name(1, "0/0") == "000000010000000000000000"
    assert wal_segment_name(1, "0/2000028") == "000000010000000000000002"
    assert wal_segment_name(3, "16/B374D848") == "0000000300000016000000B3"
