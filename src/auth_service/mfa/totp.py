"""TOTP (RFC 6238) over HOTP (RFC 4226), with pyotp; the QR code as SVG with segno.

Parameters are the ones every authenticator app understands (RFC 6238 section 1.2 and the
``otpauth://`` key URI format): HMAC-SHA1, 6 digits, 30-second steps, T0 = 0. The secret has
160 bits (RFC 4226 section 4, R6 recommends 160).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

import pyotp

DIGITS = 6
PERIOD = 30
SECRET_CHARS = 32  # base32: 32 characters are 160 bits


@dataclass(frozen=True)
class TotpEnrolment:
    """What the user copies into an authenticator app (shown once, never stored plain)."""

    secret: str  # base32, for manual entry
    uri: str  # otpauth://totp/...
    qr_svg: str  # an <svg> element of the URI


def new_secret() -> str:
    return pyotp.random_base32(SECRET_CHARS)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """An inline ``<svg>`` (no XML declaration, no script, no style attribute: the page CSP
    allows neither inline style nor data: images). segno is imported here, by the enrolment
    that draws a code, not by every serving worker (ADR 0437)."""
    import segno

    code = segno.make(uri, error="m", micro=False)
    svg: str = code.svg_inline(scale=4, dark="#000", light="#fff", border=4, omitsize=False)
    return svg


def enrolment(account: str, issuer: str) -> TotpEnrolment:
    secret = new_secret()
    uri = provisioning_uri(secret, account, issuer)
    return TotpEnrolment(secret, uri, qr_svg(uri))


def time_step(now: datetime) -> int:
    """T of RFC 6238 section 4.2: whole periods since the Unix epoch."""
    return int(now.timestamp()) // PERIOD


def normalize_code(code: str) -> str | None:
    """The digits of a typed code (spaces allowed, as apps show ``123 456``), or None."""
    digits = code.replace(" ", "").strip()
    if len(digits) != DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def matching_step(secret: str, code: str, now: datetime, window: int) -> int | None:
    """The time step within ``window`` steps of now whose code is ``code``, or None.

    RFC 6238 section 5.2: a validation system should accept codes of a small window of steps
    for clock drift. Every candidate is compared (in constant time) before deciding, so the
    answer's timing does not tell which step matched.
    """
    digits = normalize_code(code)
    if digits is None:
        return None
    otp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    current = time_step(now)
    found: int | None = None
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(otp.generate_otp(step), digits) and found is None:
            found = step
    return found
