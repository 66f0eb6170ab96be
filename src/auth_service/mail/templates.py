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


def account_exists_email(base_url: str, token: str, ttl_minutes: int, language: str) -> Rendered:
    """To the owner of an address someone tried to register again (ADR 0011)."""
    _ = i18n.translations(language).gettext
    link = _link(base_url, "/reset-password", token)
    return Rendered(
        _("Someone tried to create an account with your address"),
        _("Hello,")
        + "\n\n"
        + _(
            "Someone, maybe you, tried to create a new account with this email address. You "
            "already have an account, so nothing was created and nothing was changed."
        )
        + "\n\n"
        + _("If it was you, sign in with your password at %(url)s") % {"url": base_url + "/login"}
        + "\n\n"
        + _("If you do not remember your password, choose a new one with this link:")
        + f"\n\n  {link}\n\n"
        + _(
            "The link works once and expires in %(minutes)d minutes. If it was not you, "
            "ignore this message: your account and password stay as they are."
        )
        % {"minutes": ttl_minutes}
        + "\n",
    )


def deletion_scheduled_email(base_url: str, due: str, language: str) -> Rendered:
    """To the owner of an account whose deletion was just asked for (ADR 0936): when it
    happens, and how to keep the account (a stolen session may have asked)."""
    _ = i18n.translations(language).gettext
    return Rendered(
        _("Your account will be deleted"),
        _("Hello,")
        + "\n\n"
        + _("The deletion of your account was requested. It will be deleted on %(date)s.")
        % {"date": due}
        + "\n\n"
        + _("To keep it, sign in before then, or cancel the deletion on your account page: %(url)s")
        % {"url": base_url + "/account"}
        + "\n\n"
        + _(
            "If it was not you, sign in now and change your password: someone else may "
            "have used your account."
        )
        + "\n",
    )
