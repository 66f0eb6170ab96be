"""When a second factor is due, what a sign-in is worth, and what a sensitive operation asks.

Methods are RFC 8176 ``amr`` values; levels are NIST SP 800-63B section 4 authenticator
assurance levels, as OIDC ``acr`` values: one factor is aal1; a password with an OTP, a
look-up secret or a passkey is aal2 (4.2.1), and so is a user-verified passkey alone, a
multi-factor cryptographic authenticator (5.1.9).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from auth_service.accounts.assurance import Assurance, AuthMethod
from auth_service.accounts.identity import Identity
from auth_service.config.mfa import MfaSettings, StepUpRule
from auth_service.mfa.errors import StepUpRequired


class Factor(StrEnum):
    """The second factors a pending sign-in may be finished with (API ``methods``)."""

    totp = "totp"
    webauthn = "webauthn"
    recovery_code = "recovery_code"


@dataclass(frozen=True)
class FactorSummary:
    """A user's factors, as the sign-in and the security page need them."""

    totp: bool
    passkeys: int
    recovery_codes_left: int
    grace_started_at: datetime | None = None
    # The confirmed authenticator app's secret, still sealed under the master key, read in
    # the same statement so that a code sent with the password costs no second read.
    totp_sealed: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def has_second_factor(self) -> bool:
        """Recovery codes back up a factor; alone they are none."""
        return self.totp or self.passkeys > 0

    def methods(self, *, passkeys_enabled: bool) -> list[Factor]:
        found = []
        if self.totp:
            found.append(Factor.totp)
        if self.passkeys and passkeys_enabled:
            found.append(Factor.webauthn)
        if self.recovery_codes_left and self.has_second_factor:
            found.append(Factor.recovery_code)
        return found


class Requirement(StrEnum):
    none = "none"  # sign in with the password alone
    factor = "factor"  # the user has a factor: the second step is due
    grace = "grace"  # a required role, no factor yet, inside the grace period
    enrol = "enrol"  # a required role, no factor, grace over: enrol before signing in


def required_by_role(identity: Identity, settings: MfaSettings) -> bool:
    return bool(set(settings.required_roles) & set(identity.roles))


def requirement(
    identity: Identity, summary: FactorSummary, settings: MfaSettings, now: datetime
) -> Requirement:
    """What the sign-in of ``identity`` must do after the password."""
    if not settings.enabled:
        return Requirement.none
    if summary.has_second_factor:
        return Requirement.factor
    if not required_by_role(identity, settings):
        return Requirement.none
    started = summary.grace_started_at or now
    if now - started < timedelta(days=settings.enrolment_grace_days):
        return Requirement.grace
    return Requirement.enrol


def assurance(methods: Iterable[AuthMethod | str]) -> tuple[tuple[AuthMethod, ...], Assurance]:
    """The ``amr`` list and ``acr`` of a sign-in that used ``methods`` (in order, once each).

    Two distinct factors add ``mfa`` and reach aal2; a user-verified passkey arrives here
    already as (hwk|swk, mfa).
    """
    seen: list[AuthMethod] = []
    for method in methods:
        value = AuthMethod(method)
        if value not in seen:
            seen.append(value)
    factors = {m for m in seen if m is not AuthMethod.mfa}
    if len(factors) > 1 and AuthMethod.mfa not in seen:
        seen.append(AuthMethod.mfa)
    level = Assurance.aal2 if AuthMethod.mfa in seen else Assurance.aal1
    return tuple(seen), level


def passkey_method(device_type: str) -> AuthMethod:
    """RFC 8176: ``hwk`` for a device-bound key, ``swk`` for a synced (multi-device) one."""
    return AuthMethod.swk if device_type == "multi_device" else AuthMethod.hwk


def check_step_up(
    rule: StepUpRule, *, acr: str | None, auth_time: datetime | None, now: datetime
) -> None:
    """Raise StepUpRequired unless the session satisfies ``rule`` (its ``acr`` at least the
    rule's; its ``auth_time`` within ``max_age_seconds``)."""
    weak = rule.acr == Assurance.aal2 and acr != Assurance.aal2
    stale = rule.max_age_seconds is not None and (
        auth_time is None or now - auth_time > timedelta(seconds=rule.max_age_seconds)
    )
    if weak or stale:
        raise StepUpRequired(acr=rule.acr, max_age=rule.max_age_seconds)


def check_recent(
    settings: MfaSettings, rule: StepUpRule, *, acr: str | None, auth_time: datetime, now: datetime
) -> None:
    """Removing a factor or regenerating codes: a recent sign-in (``recent_auth_seconds``),
    and whatever the configured rule adds."""
    max_age = settings.recent_auth_seconds
    if rule.max_age_seconds is not None:
        max_age = min(max_age, rule.max_age_seconds)
    check_step_up(
        StepUpRule(acr=rule.acr, max_age_seconds=max_age), acr=acr, auth_time=auth_time, now=now
    )
