"""TOTP against RFC 6238 Appendix B, the skew window, malformed codes; recovery code shape;
the amr/acr rules (RFC 8176, NIST SP 800-63B)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pyotp
import pytest

from auth_service.accounts.assurance import Assurance, AuthMethod
from auth_service.mfa import recovery, totp
from auth_service.mfa.policy import assurance

# RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
SEED = base64.b32encode(b"12345678901234567890").decode()
VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("unix", "expected"), VECTORS)
def test_rfc_6238_vectors(unix: int, expected: str) -> None:
    assert pyotp.TOTP(SEED, digits=8).at(unix) == expected
    when = datetime.fromtimestamp(unix, UTC)
    # Our six digits are the same truncation modulo 10^6 (RFC 4226 section 5.3).
    step = totp.matching_step(SEED, expected[-6:], when, window=0)
    assert step == unix // 30


def test_window_accepts_one_step_either_side_only() -> None:
    now = datetime.fromtimestamp(1234567890, UTC)
    current = totp.time_step(now)
    otp = pyotp.TOTP(SEED)
    for offset in (-1, 0, 1):
        assert totp.matching_step(SEED, otp.generate_otp(current + offset), now, 1) == (
            current + offset
        )
    for offset in (-2, 2):
        assert totp.matching_step(SEED, otp.generate_otp(current + offset), now, 1) is None


@pytest.mark.parametrize(
    "code", ["", "12345", "1234567", "12a456", "\uff11\uff12\uff13\uff14\uff15\uff16", "12\n456"]
)
def test_malformed_codes_match_nothing(code: str) -> None:
    assert totp.matching_step(SEED, code, datetime.now(UTC), 1) is None


def test_spaces_are_allowed_in_codes() -> None:
    now = datetime.now(UTC)
    code = pyotp.TOTP(SEED).at(now)
    assert totp.matching_step(SEED, f"{code[:3]} {code[3:]}", now, 0) == totp.time_step(now)


def test_secret_has_160_bits_and_the_svg_is_inert() -> None:
    found = totp.enrolment("a@example.com", "auth-service")
    assert len(base64.b32decode(found.secret)) == 20
    assert found.uri.startswith("otpauth://totp/auth-service:a%40example.com?secret=")
    assert found.qr_svg.startswith("<svg")
    for forbidden in ("<script", "style=", "href=", "on"):
        assert forbidden not in found.qr_svg.replace("xmlns", "").replace("version", "")


def test_recovery_codes() -> None:
    codes = {recovery.new_code() for _ in range(200)}
    assert len(codes) == 200
    code = next(iter(codes))
    assert len(code) == 19
    assert code.count("-") == 3
    assert recovery.normalize(code.upper().replace("-", " ")) == code.replace("-", "")
    assert recovery.normalize("0000-0000-0000-0000") is None  # 0 is not in the alphabet


@pytest.mark.parametrize(
    ("methods", "amr", "acr"),
    [
        (["pwd"], ["pwd"], Assurance.aal1),
        (["pwd", "otp"], ["pwd", "otp", "mfa"], Assurance.aal2),
        (["pwd", "hwk"], ["pwd", "hwk", "mfa"], Assurance.aal2),
        (["hwk", "mfa"], ["hwk", "mfa"], Assurance.aal2),
        (["pwd", "pwd"], ["pwd"], Assurance.aal1),
    ],
)
def test_assurance(methods: list[str], amr: list[str], acr: Assurance) -> None:
    found, level = assurance(methods)
    assert [AuthMethod(m).value for m in found] == amr
    assert level is acr
