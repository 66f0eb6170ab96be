"""What a person reads when something goes wrong: each problem type as friendly text.

The strings are msgids of the pages' catalogues; the hosted pages translate them.
"""

from __future__ import annotations

from collections.abc import Callable

from auth_service.accounts.errors import AccountLocked, InvalidOneTimeToken, WeakPassword
from auth_service.accounts.policy import Reason
from auth_service.i18n import N_
from auth_service.problems import ServiceError

GENERIC = N_("Something went wrong. Please try again.")
PROFILE_SAVED = N_("Your profile is saved.")
PASSWORD_CHANGED = N_("Your password is changed. Your other sessions are signed out.")
SESSION_ENDED = N_("That session is signed out.")
APP_REMOVED = N_(
    "The app is disconnected. It must ask you again before it can access your account."
)
DELETION_SCHEDULED = N_(
    "Your account will be deleted on %(date)s. We sent you an email about it. Until then "
    "you can cancel the deletion here; signing in cancels it too."
)
DELETION_CANCELLED = N_("The deletion of your account is cancelled.")
TOTP_ADDED = N_("Your authenticator app is set up. Sign-in now asks for its code.")
TOTP_REMOVED = N_("Your authenticator app is removed.")
CODES_GENERATED = N_("New recovery codes are ready. Your previous codes no longer work.")
PASSKEY_ADDED = N_("Your passkey is added.")
PASSKEY_RENAMED = N_("Your passkey is renamed.")
PASSKEY_REMOVED = N_("Your passkey is removed.")
PASSKEY_FAILED = N_("The passkey could not be added. Please try again.")
IDENTITY_UNLINKED = N_("The sign-in provider is unlinked from your account.")
INVALID_NAME = N_("Enter a name of at most %(max)d characters, without special characters.")

BY_SLUG: dict[str, str] = {
    "invalid-credentials": N_("The email or password is incorrect."),
    "account-locked": N_(
        "Too many failed attempts. Try again in %(minutes)d minutes, or reset your password."
    ),
    "account-disabled": N_("This account is disabled. Contact your administrator."),
    "rate-limited": N_("Too many attempts. Wait a moment and try again."),
    "overloaded": N_("The service is busy. Please try again in a moment."),
    "invalid-email": N_("Enter a valid email address."),
    "email-taken": N_("An account with this email already exists."),
    "weak-password": N_("Choose a different password."),
    "invalid-one-time-token": N_(
        "This link is invalid, has expired or was already used. Ask for a new one."
    ),
    "feature-disabled": N_("This is switched off on this server."),
    "last-admin": N_("You are the last administrator. Make someone else an administrator first."),
    "flow-expired": N_("This page has expired. Please start again."),
    "form-forged": N_(
        "This form did not come from this site or has expired. Reload the page and try again."
    ),
    "user-not-found": N_("This account no longer exists."),
    "session-not-found": N_("That session has already ended."),
    "no-signing-key": N_("The service is not ready yet. Please try again shortly."),
    "client-not-found": N_("This app is not registered here."),
    "invalid-factor": N_("That code or passkey was not accepted. Please try again."),
    "factor-not-found": N_("That sign-in method no longer exists."),
    "factor-exists": N_("An authenticator app is set up already. Remove it first."),
    "factor-not-pending": N_("Start setting up the authenticator app again."),
    "factor-disabled": N_("This is switched off on this server."),
    "invalid-passkey-name": N_(
        "Enter a name of at most 64 characters, without special characters."
    ),
    "step-up-required": N_("Please sign in again to do this."),
    "connector-not-found": N_("This sign-in provider is not available."),
    "federation-cancelled": N_("Signing in at the provider was cancelled. Please try again."),
    "federation-state-invalid": N_(
        "This sign-in did not start in this browser, or it has expired. Please start again."
    ),
    "federation-token-invalid": N_(
        "The sign-in provider's answer could not be verified. Please try again."
    ),
    "upstream-unavailable": N_(
        "The sign-in provider did not answer in time. Please try again in a moment."
    ),
    "invalid-connector": N_("This sign-in provider is not set up correctly."),
    "federated-email-collision": N_(
        "An account with this email address exists already. Sign in with your password "
        "first to prove it is yours."
    ),
    "federated-signup-closed": N_(
        "No account is linked to this identity, and this provider does not create accounts."
    ),
    "federated-email-missing": N_(
        "The sign-in provider did not share a usable email address with us."
    ),
    "last-sign-in-method": N_(
        "This is the last way to sign in to your account. Set a password first."
    ),
    "federated-identity-not-found": N_("That linked sign-in provider no longer exists."),
    "federated-identity-taken": N_("This identity is linked to another account."),
}


def describe(exc: ServiceError, gettext: Callable[[str], str]) -> str:
    """The reader's text for a failure."""
    text = gettext(BY_SLUG.get(exc.problem.slug, GENERIC))
    if isinstance(exc, AccountLocked):
        minutes = max(1, -(-(exc.retry_after_seconds or 60) // 60))
        return text % {"minutes": minutes}
    return text


def password_reasons(exc: WeakPassword, gettext: Callable[[str], str]) -> list[str]:
    """Each reason of the password policy, translated (unknown reasons as they are)."""
    return [
        gettext(r.template) % r.params if isinstance(r, Reason) else str(r) for r in exc.reasons
    ]


def invalid_link() -> InvalidOneTimeToken:
    """What a malformed emailed link is: the same answer as an expired or spent one."""
    return InvalidOneTimeToken()
