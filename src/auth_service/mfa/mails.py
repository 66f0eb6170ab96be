"""The emails a user gets when their second factors change, in their language.

A factor added or removed without the owner knowing is how an account takeover becomes
permanent; the mail says what changed and what to do if it was not them (no link: a link
in a security notice trains people to click links in security notices).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from auth_service import i18n
from auth_service.i18n import N_

TOTP = N_("an authenticator app")
PASSKEY = N_("a passkey")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _body(gettext: Callable[[str], str], lead: str) -> str:
    return (
        gettext("Hello,")
        + "\n\n"
        + lead
        + "\n\n"
        + gettext(
            "If this was not you, sign in, remove what you do not recognise, change your "
            "password, and tell your administrator."
        )
        + "\n"
    )


def factor_added(what: str, product: str, language: str) -> Rendered:
    _ = i18n.translations(language).gettext
    lead = _("%(what)s was added to your %(product)s account as a sign-in method.") % {
        "what": _(what),
        "product": product,
    }
    return Rendered(_("A sign-in method was added to your account"), _body(_, _sentence(lead)))


def factor_removed(what: str, product: str, language: str) -> Rendered:
    _ = i18n.translations(language).gettext
    lead = _("%(what)s was removed from the sign-in methods of your %(product)s account.") % {
        "what": _(what),
        "product": product,
    }
    return Rendered(_("A sign-in method was removed from your account"), _body(_, _sentence(lead)))


def factors_reset(product: str, language: str) -> Rendered:
    _ = i18n.translations(language).gettext
    lead = _(
        "An administrator removed every second factor and passkey of your %(product)s "
        "account. Set up a new one the next time you sign in."
    ) % {"product": product}
    return Rendered(_("Your second factors were reset"), _body(_, lead))
