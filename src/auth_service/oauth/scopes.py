"""Scopes (RFC 6749 section 3.3) and the claims each OpenID Connect scope releases (OIDC
Core section 5.4). Custom API scopes come from ``oauth.scopes`` and release no claim."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from auth_service.i18n import N_
from auth_service.oauth.errors import InvalidScope

OPENID = "openid"
OFFLINE_ACCESS = "offline_access"
# What the consent page says each standard scope grants (msgids of the page catalogues).
STANDARD_SCOPES: dict[str, str] = {
    OPENID: N_("Know who you are (your account identifier)"),
    "profile": N_("See your name and language"),
    "email": N_("See your email address"),
    OFFLINE_ACCESS: N_("Stay connected when you are not using it"),
}
# OIDC Core 5.4; what userinfo releases per scope.
CLAIMS_BY_SCOPE: dict[str, tuple[str, ...]] = {
    "profile": ("name", "locale"),
    "email": ("email", "email_verified"),
}
# Scopes only a user can grant: client_credentials never gets them.
USER_SCOPES = frozenset(STANDARD_SCOPES)
MAX_SCOPE_LENGTH = 2048
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,64}")


def parse_scope(value: str | None) -> tuple[str, ...]:
    """The scope tokens of a ``scope`` parameter, duplicates removed, order kept."""
    if not value:
        return ()
    if len(value) > MAX_SCOPE_LENGTH:
        raise InvalidScope("scope is too long")
    tokens = value.split(" ")
    if any(not _SCOPE_TOKEN.fullmatch(t) for t in tokens):
        raise InvalidScope("scope is not a space-separated list of scope tokens")
    return tuple(dict.fromkeys(tokens))


def format_scope(scopes: Iterable[str]) -> str:
    return " ".join(scopes)


def supported_scopes(custom: Mapping[str, str]) -> tuple[str, ...]:
    """Every scope a client may be allowed: the standard ones and the configured API scopes."""
    return tuple(dict.fromkeys((*STANDARD_SCOPES, *custom)))


def describe(scope: str, custom: Mapping[str, str]) -> str:
    """What the consent page says a scope grants (a msgid for standard scopes)."""
    return STANDARD_SCOPES.get(scope) or custom.get(scope) or scope


def claims_for(scopes: Iterable[str]) -> tuple[str, ...]:
    """The userinfo claims the scopes release, besides ``sub``."""
    return tuple(c for s in scopes for c in CLAIMS_BY_SCOPE.get(s, ()))
