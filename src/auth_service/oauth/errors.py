"""OAuth errors: the codes of RFC 6749 (sections 4.1.2.1 and 5.2), OpenID Connect Core
(section 3.1.2.6), RFC 6750 (section 3), RFC 7009, RFC 7591 and RFC 8707.

The protocol endpoints answer these in the form those RFCs define (``{"error",
"error_description"}``, or redirect parameters), not as problem+json: strict clients parse
exactly that (ADR 0700). Descriptions are for developers and never hold a secret. The admin
API's failures are ``ServiceError`` problems like every other API's.
"""

from __future__ import annotations

from typing import ClassVar

from auth_service.problems import ServiceError, field_errors, problem


class OAuthError(Exception):
    """A protocol error: ``error`` is the registered code, ``status`` the HTTP status when
    the endpoint answers directly (not by redirect)."""

    error: ClassVar[str] = "invalid_request"
    status: ClassVar[int] = 400

    def __init__(self, description: str = "") -> None:
        super().__init__(description or self.error)
        self.description = description

    def body(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """RFC 6749 section 5.2: client authentication failed (401 with a challenge)."""

    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class AccessDenied(OAuthError):
    error = "access_denied"


class LoginRequired(OAuthError):
    """OIDC Core 3.1.2.6: prompt=none and the user must sign in."""

    error = "login_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class RequestNotSupported(OAuthError):
    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    error = "request_uri_not_supported"


class RegistrationNotSupported(OAuthError):
    error = "registration_not_supported"


class InvalidTarget(OAuthError):
    """RFC 8707 section 2: a resource the client may not ask for."""

    error = "invalid_target"


class InvalidToken(OAuthError):
    """RFC 6750 section 3.1, on the bearer endpoints (userinfo)."""

    error = "invalid_token"
    status = 401


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status = 403


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"


class InvalidRedirectUri(OAuthError):
    """RFC 7591 section 3.2.2."""

    error = "invalid_redirect_uri"


class InvalidClientMetadataError(OAuthError):
    error = "invalid_client_metadata"


# ---- the admin API's problems ------------------------------------------------------------


@problem(404, "client-not-found", "No such OAuth client")
class ClientNotFound(ServiceError):
    """No client with this client_id in the tenant."""


@problem(422, "invalid-client-metadata", "The client's metadata is not valid")
class InvalidClientMetadata(ServiceError):
    """A field of a client's registration is refused; ``field`` and ``reason`` say which
    and why (RFC 7591 names)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def extensions(self) -> dict[str, object]:
        return field_errors(self.field, [self.reason])

    def as_oauth(self) -> OAuthError:
        """The same refusal in RFC 7591 form (dynamic registration)."""
        cls = InvalidRedirectUri if "redirect_uri" in self.field else InvalidClientMetadataError
        return cls(f"{self.field}: {self.reason}")
