"""How a user authenticated: methods (RFC 8176 ``amr`` values) and the assurance level they
reach (NIST SP 800-63B authenticator assurance levels, as OIDC ``acr`` values)."""

from __future__ import annotations

from enum import StrEnum


class AuthMethod(StrEnum):
    """RFC 8176 section 2 values we issue."""

    pwd = "pwd"  # noqa: S105 - a method name, not a password
    otp = "otp"
    hwk = "hwk"  # proof of possession of a hardware-protected key (a device-bound passkey)
    swk = "swk"  # proof of possession of a software-protected key (a synced passkey)
    mfa = "mfa"  # more than one factor


class Assurance(StrEnum):
    """SP 800-63B section 4: aal1 is one factor; aal2 is two factors, or a user-verified
    passkey (a multi-factor cryptographic authenticator)."""

    aal1 = "aal1"
    aal2 = "aal2"


PASSWORD_ONLY = (AuthMethod.pwd,)
