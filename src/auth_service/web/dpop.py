"""DPoP (RFC 9449) at the JSON API (``/v1``): the problem+json face of ``security.dpop``.

The sign-in endpoints that issue tokens (``signin_key``) take an optional ``DPoP`` proof of
their own request and bind what they issue to its key; the routes authenticated by a token
(``web.deps.bearer_claims`` through ``resource_proof``) take ``Authorization: DPoP`` with a
proof by the token's key. The proof rules, the replay store and the server nonces are the
OAuth provider's (one ``ProofVerifier``, one ``oauth.dpop_nonce`` setting): a client uses
one DPoP key and one nonce across ``/oauth2/*`` and ``/v1``. docs/adr/0732.
"""

from __future__ import annotations

from fastapi import Request

from auth_service.problems import define
from auth_service.security.dpop import ALGORITHMS, NonceRequired, ProofRefused, same_key
from auth_service.services import Services
from auth_service.web.errors import INVALID_TOKEN, ApiProblem

REALM = "auth-service"
_ALGS = " ".join(ALGORITHMS)

INVALID_DPOP_PROOF = define(
    400,
    "invalid-dpop-proof",
    "The DPoP proof is not valid",
    description="A sign-in or refresh (`/v1/auth/*`) with a `DPoP` header whose proof fails "
    "RFC 9449 section 4.3 (malformed, wrong `typ`/`alg`, private or missing `jwk`, bad "
    "signature, `htm`/`htu` not this request, `iat` outside the window, `jti` already used); "
    '`detail` says which. `WWW-Authenticate: DPoP error="invalid_dpop_proof"`; nothing is '
    "issued or spent.",
)
USE_DPOP_NONCE = define(
    400,
    "use-dpop-nonce",
    "Send the DPoP proof again with the server's nonce",
    description="With `oauth.dpop_nonce` on, a sign-in or refresh proof without a valid "
    "`nonce`: the `DPoP-Nonce` header has one to put in a new proof (RFC 9449 section 8).",
)
DPOP_PROOF_REFUSED = define(
    401,
    "invalid-dpop-proof-at-resource",
    "The DPoP proof of this request is not valid",
    challenge=True,
    description="A route authenticated with `Authorization: DPoP` whose proof is missing or "
    "fails the checks (including `ath`, the token's hash); "
    '`WWW-Authenticate: DPoP error="invalid_dpop_proof"` (RFC 9449 section 7.1).',
)
DPOP_NONCE_REQUIRED = define(
    401,
    "use-dpop-nonce-at-resource",
    "Send the DPoP proof again with the server's nonce",
    challenge=True,
    description="With `oauth.dpop_nonce` on, a token-authenticated route whose proof has no "
    'valid `nonce`: `WWW-Authenticate: DPoP error="use_dpop_nonce"` and a `DPoP-Nonce` '
    "header (RFC 9449 section 9).",
)


def challenge(scheme: str | None = None, error: str | None = None, detail: str = "") -> str:
    """``WWW-Authenticate`` advertising both schemes; ``error`` on the scheme ``scheme``."""
    parts = []
    for name, extra in (("Bearer", ""), ("DPoP", f', algs="{_ALGS}"')):
        value = f'{name} realm="{REALM}"{extra}'
        if error is not None and scheme == name.lower():
            value += f', error="{error}"'
            if detail:
                value += f', error_description="{detail}"'
        parts.append(value)
    return ", ".join(parts)


def _url(request: Request, services: Services) -> str:
    """The URL a proof's ``htu`` names: our public base (the issuer, as at the OAuth
    endpoints) and the request's path; never the Host header a proxy may rewrite."""
    return services.settings.issuer.rstrip("/") + request.url.path


async def signin_key(request: Request, services: Services) -> str | None:
    """The thumbprint of the request's DPoP key (None without a ``DPoP`` header), checked
    before anything is spent or issued. Raises ApiProblem (400, RFC 9449 sections 5 and 8)."""
    headers = request.headers.getlist("dpop")
    if not headers:
        return None
    try:
        proof = await services.oauth.dpop_proofs.verify(
            headers, method=request.method, url=_url(request, services)
        )
    except NonceRequired as exc:
        raise ApiProblem(
            USE_DPOP_NONCE,
            exc.reason,
            headers={
                "WWW-Authenticate": f'DPoP algs="{_ALGS}", error="use_dpop_nonce"',
                "DPoP-Nonce": exc.nonce,
            },
        ) from None
    except ProofRefused as exc:
        raise ApiProblem(
            INVALID_DPOP_PROOF,
            exc.reason,
            headers={"WWW-Authenticate": f'DPoP algs="{_ALGS}", error="invalid_dpop_proof"'},
        ) from None
    return proof.jkt if proof else None


async def resource_proof(request: Request, services: Services, token: str, bound: str) -> None:
    """A DPoP-presented token bound to ``bound``: the request's proof must be valid, carry
    the token's ``ath`` and be signed by that key. Raises ApiProblem (401, section 7)."""
    try:
        proof = await services.oauth.dpop_proofs.verify(
            request.headers.getlist("dpop"),
            method=request.method,
            url=_url(request, services),
            access_token=token,
        )
    except NonceRequired as exc:
        raise ApiProblem(
            DPOP_NONCE_REQUIRED,
            exc.reason,
            headers={
                "WWW-Authenticate": challenge("dpop", "use_dpop_nonce", exc.reason),
                "DPoP-Nonce": exc.nonce,
            },
        ) from None
    except ProofRefused as exc:
        raise ApiProblem(
            DPOP_PROOF_REFUSED,
            exc.reason,
            headers={"WWW-Authenticate": challenge("dpop", "invalid_dpop_proof", exc.reason)},
        ) from None
    if proof is None:
        reason = "a DPoP proof is required"
        raise ApiProblem(
            DPOP_PROOF_REFUSED,
            reason,
            headers={"WWW-Authenticate": challenge("dpop", "invalid_dpop_proof", reason)},
        )
    if not same_key(proof.jkt, bound):
        raise wrong_token("dpop", "the DPoP proof is not by the key the token is bound to")


def wrong_token(scheme: str, reason: str) -> ApiProblem:
    """401 ``invalid-token``: the token does not go with this scheme or this key."""
    return ApiProblem(
        INVALID_TOKEN,
        reason,
        headers={"WWW-Authenticate": challenge(scheme, "invalid_token", reason)},
    )
