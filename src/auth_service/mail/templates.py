"""Mail bodies. Links carry the token as ``token=`` so any front end can pick it up."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


def _link(base_url: str, path: str, token: str) -> str:
    return f"{base_url}{path}?{urlencode({'token': token})}"


def verification_email(base_url: str, token: str, ttl_hours: int) -> Rendered:
    link = _link(base_url, "/verify-email", token)
    return Rendered(
        "Confirm your email address",
        "Hello,\n\n"
        "Please confirm your email address by opening this link:\n\n"
        f"  {link}\n\n"
        f"The link expires in {ttl_hours} hours. If you did not create an account, "
        "ignore this message.\n",
    )


def password_reset_email(base_url: str, token: str, ttl_minutes: int) -> Rendered:
    link = _link(base_url, "/reset-password", token)
    return Rendered(
        "Reset your password",
        "Hello,\n\n"
        "Someone asked to reset the password of this account. To choose a new password, "
        "open this link:\n\n"
        f"  {link}\n\n"
        f"The link works once and expires in {ttl_minutes} minutes. If it was not you, "
        "ignore this message: your password stays as it is.\n",
    )


def account_exists_email(base_url: str, token: str, ttl_minutes: int) -> Rendered:
    """To the owner of an address someone tried to register again (ADR 0011)."""
    link = _link(base_url, "/reset-password", token)
    return Rendered(
        "Someone tried to create an account with your address",
        "Hello,\n\n"
        "Someone, maybe you, tried to create a new account with this email address. You "
        "already have an account, so nothing was created and nothing was changed.\n\n"
        f"If it was you, sign in with your password at {base_url}\n\n"
        "If you do not remember your password, choose a new one with this link:\n\n"
        f"  {link}\n\n"
        f"The link works once and expires in {ttl_minutes} minutes. If it was not you, "
        "ignore this message: your account and password stay as they are.\n",
    )
