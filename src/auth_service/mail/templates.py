"""Mail bodies, in the recipient's language. Links carry the token as ``token=`` so any front
end (``ui.public_url``) can pick it up."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from auth_service import i18n


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


def _link(base_url: str, path: str, token: str) -> str:
    return f"{base_url}{path}?{urlencode({'token': token})}"


def verification_email(base_url: str, token: str, ttl_hours: int, language: str) -> Rendered:
    _ = i18n.translations(language).gettext
    link = _link(base_url, "/verify-email", token)
    return Rendered(
        _("Confirm your email address"),
        _("Hello,")
        + "\n\n"
        + _("Please confirm your email address by opening this link:")
        + f"\n\n  {link}\n\n"
        + _(
            "The link expires in %(hours)d hours. If you did not create an account, "
            "ignore this message."
        )
        % {"hours": ttl_hours}
        + "\n",
    )


def password_reset_email(base_url: str, token: str, ttl_minutes: int, language: str) -> Rendered:
    _ = i18n.translations(language).gettext
    link = _link(base_url, "/reset-password", token)
    return Rendered(
        _("Reset your password"),
        _("Hello,")
        + "\n\n"
        + _(
            "Someone asked to reset the password of this account. To choose a new password, "
            "open this link:"
        )
        + f"\n\n  {link}\n\n"
        + _(
            "The link works once and expires in %(minutes)d minutes. If it was not you, "
            "ignore this message: your password stays as it is."
        )
        % {"minutes": ttl_minutes}
        + "\n",
    )
