"""What a client may register (RFC 7591 section 2 names), checked in one place for the CLI,
the admin API and dynamic registration."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from auth_service.oauth import rfc8252
from auth_service.oauth.errors import InvalidClientMetadata
from auth_service.oauth.jwk_sets import jwks_problem, jwks_uri_problem
from auth_service.oauth.scopes import parse_scope

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"  # RFC 8628 (oauth.rfc8628)

MAX_NAME = 200
MAX_URIS = 20
MAX_URI_LENGTH = 2048
# RFC 8693 section 2.1
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105


def absolute_uri(uri: str) -> bool:
    """An absolute URI without a fragment (RFC 8707 section 2)."""
    parts = urlsplit(uri)
    return bool(parts.scheme and parts.netloc and not parts.fragment and "#" not in uri)


class ClientType(StrEnum):
    """RFC 6749 section 2.1."""

    confidential = "confidential"  # can keep a secret: a server-side web app
    public = "public"  # cannot: native and browser apps (PKCE protects them)


@dataclass(frozen=True)
class ClientSpec:
    """A client's registration, as an operator or a registering client states it."""

    name: str
    client_type: ClientType
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ("authorization_code",)
    scope: str = "openid"
    resources: tuple[str, ...] = ()
    first_party: bool = False
    token_endpoint_auth_method: str | None = None  # default by type
    id_token_signed_response_alg: str = "RS256"  # noqa: S105 - an algorithm name
    # RFC 9126 section 6: authorization requests only by pushed authorization request.
    require_pushed_authorization_requests: bool = False
    # RFC 7591 section 2: the client's public keys (private_key_jwt), inline or by URL.
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    # OIDC Core 8: "public" (the user's id) or "pairwise" (one sub per sector, ADR 0741).
    subject_type: str = "public"
    # OIDC Core 8.1: not supported (the document is not fetched); refused when sent.
    sector_identifier_uri: str | None = None
    # OpenID Connect Back-Channel Logout 1.0 section 2.2: where logout tokens are POSTed,
    # and whether they must carry ``sid``.
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    # RFC 8693 (token exchange): the audiences this client may exchange a token for.
    token_exchange_audiences: tuple[str, ...] = ()

    def with_defaults(self) -> ClientSpec:
        method = self.token_endpoint_auth_method or (
            "none" if self.client_type is ClientType.public else "client_secret_basic"
        )
        return replace(self, token_endpoint_auth_method=method)


@dataclass(frozen=True)
class ClientPolicy:
    """What this server supports (from the registries and settings)."""

    grant_types: Collection[str]
    auth_methods: Collection[str]
    id_token_algs: Collection[str]
    scopes: Collection[str]
    redirect_grants: frozenset[str] = field(
        default_factory=lambda: frozenset({"authorization_code"})
    )

    def check(self, spec: ClientSpec) -> ClientSpec:
        """The spec with its defaults, or InvalidClientMetadata naming the first problem."""
        spec = spec.with_defaults()
        if spec.backchannel_logout_uri == "":  # an update that removes it, and its option
            spec = replace(
                spec, backchannel_logout_uri=None, backchannel_logout_session_required=False
            )
        name = spec.name.strip()
        if not name or len(name) > MAX_NAME or any(ch < " " or ch == "\x7f" for ch in name):
            raise InvalidClientMetadata("client_name", f"1 to {MAX_NAME} printable characters")
        self._check_grants(spec)
        self._check_uris(spec)
        self._check_auth(spec)
        _check_subject(spec)
        scopes = parse_scope(spec.scope) if spec.scope else ()
        unknown = [s for s in scopes if s not in self.scopes]
        if unknown:
            raise InvalidClientMetadata("scope", f"unsupported scope {unknown[0]!r}")
        if spec.id_token_signed_response_alg not in self.id_token_algs:
            raise InvalidClientMetadata(
                "id_token_signed_response_alg", "one of " + ", ".join(self.id_token_algs)
            )
        if any(not absolute_uri(uri) for uri in spec.resources):
            raise InvalidClientMetadata("resources", "absolute URIs without a fragment")
        self._check_exchange(spec)
        self._check_backchannel(spec)
        return replace(spec, name=name, scope=" ".join(scopes))

    @staticmethod
    def _check_exchange(spec: ClientSpec) -> None:
        """RFC 8693 section 2.1: an audience is a URI or the logical name of a service (a
        client_id, say): printable, without spaces."""
        audiences = spec.token_exchange_audiences
        if len(audiences) > MAX_URIS:
            raise InvalidClientMetadata("token_exchange_audiences", f"at most {MAX_URIS}")
        for audience in audiences:
            if (
                not audience
                or len(audience) > MAX_URI_LENGTH
                or any(ch <= " " or ch == "\x7f" for ch in audience)
            ):
                raise InvalidClientMetadata(
                    "token_exchange_audiences", "URIs or names, printable and without spaces"
                )

    @staticmethod
    def _check_backchannel(spec: ClientSpec) -> None:
        """Back-Channel Logout 1.0 section 2.2: an absolute http(s) URI, no fragment (a
        query is allowed). Where it may point (SSRF) is checked at every delivery."""
        uri = spec.backchannel_logout_uri
        if uri is None:
            if spec.backchannel_logout_session_required:
                raise InvalidClientMetadata(
                    "backchannel_logout_session_required", "needs a backchannel_logout_uri"
                )
            return
        parts = urlsplit(uri)
        if (
            len(uri) > MAX_URI_LENGTH
            or parts.scheme not in ("https", "http")
            or not parts.hostname
            or "#" in uri
            or "@" in parts.netloc
        ):
            raise InvalidClientMetadata(
                "backchannel_logout_uri", "an absolute http(s) URI without credentials or fragment"
            )

    def _check_grants(self, spec: ClientSpec) -> None:
        if not spec.grant_types:
            raise InvalidClientMetadata("grant_types", "at least one grant type")
        for grant in spec.grant_types:
            if grant not in self.grant_types:
                raise InvalidClientMetadata("grant_types", f"unsupported grant type {grant!r}")
        if spec.client_type is ClientType.public and "client_credentials" in spec.grant_types:
            raise InvalidClientMetadata(
                "grant_types", "client_credentials needs a confidential client"
            )
        if spec.client_type is ClientType.public and TOKEN_EXCHANGE in spec.grant_types:
            raise InvalidClientMetadata("grant_types", "token exchange needs a confidential client")
        user_grants = {"authorization_code", DEVICE_CODE}
        if "refresh_token" in spec.grant_types and not user_grants & set(spec.grant_types):
            raise InvalidClientMetadata(
                "grant_types", "refresh_token needs authorization_code or the device code grant"
            )

    def _check_uris(self, spec: ClientSpec) -> None:
        needs_redirect = any(g in self.redirect_grants for g in spec.grant_types)
        if needs_redirect and not spec.redirect_uris:
            raise InvalidClientMetadata("redirect_uris", "at least one for authorization_code")
        for field_name, uris in (
            ("redirect_uris", spec.redirect_uris),
            ("post_logout_redirect_uris", spec.post_logout_redirect_uris),
        ):
            if len(uris) > MAX_URIS:
                raise InvalidClientMetadata(field_name, f"at most {MAX_URIS}")
            for uri in uris:
                problem = rfc8252.registration_problem(uri)
                if problem:
                    raise InvalidClientMetadata(field_name, f"{uri[:100]!r} {problem}")

    def _check_auth(self, spec: ClientSpec) -> None:
        method = spec.token_endpoint_auth_method or ""
        if method not in self.auth_methods:
            raise InvalidClientMetadata(
                "token_endpoint_auth_method", "one of " + ", ".join(self.auth_methods)
            )
        if (method == "none") != (spec.client_type is ClientType.public):
            raise InvalidClientMetadata(
                "token_endpoint_auth_method", "none for public clients, and only for them"
            )
        self._check_keys(spec, method)

    @staticmethod
    def _check_keys(spec: ClientSpec, method: str) -> None:
        """``private_key_jwt`` needs the client's public keys: ``jwks`` or ``jwks_uri``."""
        if spec.jwks is not None and spec.jwks_uri is not None:
            raise InvalidClientMetadata("jwks", "either jwks or jwks_uri, not both")
        if method == "private_key_jwt" and spec.jwks is None and spec.jwks_uri is None:
            raise InvalidClientMetadata("jwks", "private_key_jwt needs jwks or jwks_uri")
        if spec.jwks is not None and (problem := jwks_problem(spec.jwks)):
            raise InvalidClientMetadata("jwks", problem)
        if spec.jwks_uri is not None and (problem := jwks_uri_problem(spec.jwks_uri)):
            raise InvalidClientMetadata("jwks_uri", problem)


SUBJECT_TYPES = ("public", "pairwise")


def sector_of(redirect_uris: Collection[str]) -> str | None:
    """OIDC Core 8.1: the sector of a client without sector_identifier_uri, the host of its
    redirect URIs when they share one (None when they do not, or there are none)."""
    hosts = {(urlsplit(uri).hostname or "").lower() for uri in redirect_uris}
    hosts.discard("")
    return hosts.pop() if len(hosts) == 1 else None


def _check_subject(spec: ClientSpec) -> None:
    if spec.subject_type not in SUBJECT_TYPES:
        raise InvalidClientMetadata("subject_type", "public or pairwise")
    if spec.sector_identifier_uri is not None:
        raise InvalidClientMetadata(
            "sector_identifier_uri",
            "not supported: the sector of a pairwise client is the host of its redirect URIs",
        )
    if spec.subject_type == "pairwise" and sector_of(spec.redirect_uris) is None:
        raise InvalidClientMetadata(
            "subject_type",
            "pairwise needs redirect URIs on one host (that host is the sector; "
            "sector_identifier_uri is not supported)",
        )
