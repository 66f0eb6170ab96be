"""Federation errors, each with the problem it answers with. Every one of them ends a
federated sign-in on a page that says what happened, with a reference id (never a 500)."""

from __future__ import annotations

from auth_service.problems import ServiceError, problem


class FederationError(ServiceError):
    pass


@problem(404, "connector-not-found", "No enabled identity provider with that id")
class ConnectorNotFound(FederationError):
    """Unknown connector id, or a disabled connector at sign-in."""


@problem(409, "connector-exists", "An identity provider with that id exists already")
class ConnectorExists(FederationError):
    """Creating a connector with an id that is taken."""


@problem(422, "invalid-connector", "The identity provider's settings are not valid")
class InvalidConnector(FederationError):
    """The message says which setting and why (no secret is ever in it)."""


@problem(400, "federation-cancelled", "The sign-in was cancelled at the identity provider")
class FederationCancelled(FederationError):
    """The upstream answered ``error=access_denied`` (the user said no) or another error."""


@problem(400, "federation-state-invalid", "This sign-in did not start in this browser")
class FederationStateInvalid(FederationError):
    """Unknown, expired, spent or foreign ``state``: the callback is not ours to finish."""


@problem(401, "federation-token-invalid", "The identity provider's answer could not be verified")
class FederationTokenInvalid(FederationError):
    """The ID token failed validation (signature, iss, aud, exp, iat, nonce, alg)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@problem(502, "upstream-unavailable", "The identity provider did not answer; try again later")
class UpstreamUnavailable(FederationError):
    """Down, slow (past the timeout), or answering something that is not the protocol."""


@problem(409, "federated-email-collision", "An account with this email exists already")
class EmailCollision(FederationError):
    """The upstream's email belongs to a local account we may not link automatically."""


@problem(403, "federated-signup-closed", "No account is linked to this identity")
class SignupClosed(FederationError):
    """First sign-in through a connector that does not create accounts."""


@problem(422, "federated-email-missing", "The identity provider did not share an email address")
class EmailMissing(FederationError):
    """The upstream sent no email (or an invalid one) for a sign-in that needs one."""


@problem(409, "last-sign-in-method", "This is the last way to sign in to the account")
class LastSignInMethod(FederationError):
    """Unlinking the only linked identity of an account without a password."""


@problem(404, "federated-identity-not-found", "No such linked identity")
class LinkNotFound(FederationError):
    """Unlinking an identity that is not (or no longer) linked to this account."""


@problem(409, "federated-identity-taken", "This identity is linked to another account")
class IdentityTaken(FederationError):
    """Linking an upstream identity that another account has linked already."""
