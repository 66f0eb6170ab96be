"""A resource server that accepts auth-service's access tokens (RFC 9068) from the JWKS alone.

    .venv/bin/python examples/resource-server/app.py \
        --issuer http://127.0.0.1:8000 --audience https://api.example.com --port 8001

Every request's bearer token is checked offline, with no call to auth-service per request:

- the header: ``typ`` is ``at+jwt`` (RFC 9068 section 2.1: an ID token or any other JWT of
  the issuer is refused), ``alg`` is in the allow-list (never ``none``, never HMAC) and is
  the algorithm of the key the ``kid`` names;
- the signature, with the key from the issuer's JWKS (``jwks_uri`` from its metadata);
- ``iss`` is the issuer, ``aud`` holds this API's audience, ``exp`` is in the future, and
  ``iat``, ``sub``, ``client_id``, ``jti`` are present;
- the route's scope is in ``scope`` (else 403 ``insufficient_scope``).

The JWKS is cached; a ``kid`` not in the cache refetches it (the issuer rotated its keys),
at most once per ``--refetch-interval`` seconds so that tokens with made-up ``kid``s cannot
make this server hammer the issuer. Failures answer 401 with ``WWW-Authenticate: Bearer
error="invalid_token"`` (RFC 6750 section 3).
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import jwt
import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

# Asymmetric algorithms only: an HMAC "alg" would let a token be signed with the public key.
ALLOWED_ALGORITHMS = ("ES256", "RS256", "EdDSA", "PS256", "ES384", "RS384", "ES512", "RS512")
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")
MAX_TOKEN_BYTES = 8192


class TokenError(Exception):
    """The token is not acceptable: 401 with ``error`` (RFC 6750 section 3.1)."""

    def __init__(
        self, description: str, error: str = "invalid_token", status: int = 401, scope: str = ""
    ) -> None:
        super().__init__(description)
        self.description = description
        self.error = error
        self.status = status
        self.scope = scope


@dataclass
class Settings:
    issuer: str
    audience: str
    leeway: int = 0
    refetch_interval: float = 30.0
    jwks_uri: str | None = None


@dataclass
class Jwks:
    """The issuer's public keys by ``kid``, fetched once and again only for an unknown kid."""

    settings: Settings
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetches: int = 0
    fetched_at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def _jwks_uri(self, http: httpx.AsyncClient) -> str:
        if self.settings.jwks_uri is None:
            meta = await http.get(
                self.settings.issuer.rstrip("/") + "/.well-known/oauth-authorization-server"
            )
            meta.raise_for_status()
            document = meta.json()
            if document.get("issuer") != self.settings.issuer:
                raise RuntimeError(f"metadata names issuer {document.get('issuer')!r}")
            self.settings.jwks_uri = str(document["jwks_uri"])
        return self.settings.jwks_uri

    async def refresh(self) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(await self._jwks_uri(http))
            response.raise_for_status()
            document = response.json()
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            if entry.get("use", "sig") != "sig" or "kid" not in entry:
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK.from_dict(entry)
            except jwt.PyJWTError:
                continue  # a key type this library does not know: not one we can verify with
        self.keys = keys
        self.fetches += 1
        self.fetched_at = time.monotonic()

    async def key(self, kid: str) -> jwt.PyJWK:
        if kid in self.keys:
            return self.keys[kid]
        async with self._lock:
            recently = time.monotonic() - self.fetched_at < self.settings.refetch_interval
            if kid not in self.keys and not recently:
                try:
                    await self.refresh()
                except (httpx.HTTPError, ValueError, KeyError, RuntimeError) as exc:
                    raise TokenError("the issuer's keys cannot be fetched", status=503) from exc
        if kid not in self.keys:
            raise TokenError("unknown signing key")
        return self.keys[kid]


class AccessTokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jwks = Jwks(settings)

    async def verify(self, token: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenError("token too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("malformed token") from exc
        typ = str(header.get("typ", "")).lower()
        if typ not in ("at+jwt", "application/at+jwt"):
            raise TokenError("not an access token (typ)")
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise TokenError("algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("no key id")
        key = await self.jwks.key(kid)
        if key.algorithm_name != alg:
            raise TokenError("algorithm does not match the key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                issuer=self.settings.issuer,
                audience=self.settings.audience,
                leeway=self.settings.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError("token not meant for this API (aud)") from exc
        except jwt.PyJWTError as exc:
            raise TokenError(f"token rejected: {type(exc).__name__}") from exc
        return claims


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # RFC 6750 section 3.1: no error code when the request carried no token at all.
        raise TokenError("", error="")
    return token.strip()


def create_app(settings: Settings) -> FastAPI:
    verifier = AccessTokenVerifier(settings)
    app = FastAPI(title="Example resource server")
    app.state.verifier = verifier

    @app.exception_handler(TokenError)
    async def token_error(_request: Request, exc: TokenError) -> JSONResponse:
        challenge = 'Bearer realm="example-api"'
        if exc.error:
            challenge += f', error="{exc.error}", error_description="{exc.description}"'
        if exc.scope:
            challenge += f', scope="{exc.scope}"'
        body = {"error": exc.error or "unauthorized", "error_description": exc.description}
        return JSONResponse(body, exc.status, headers={"WWW-Authenticate": challenge})

    async def claims(request: Request) -> dict[str, Any]:
        return await verifier.verify(bearer(request))

    def scoped(scope: str) -> Any:
        async def check(found: Annotated[dict[str, Any], Depends(claims)]) -> dict[str, Any]:
            if scope not in str(found.get("scope", "")).split():
                raise TokenError(
                    f"needs scope {scope}", error="insufficient_scope", status=403, scope=scope
                )
            return found

        return Depends(check)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "jwks_fetches": verifier.jwks.fetches}

    @app.get("/api/me")
    async def me(found: Annotated[dict[str, Any], Depends(claims)]) -> dict[str, Any]:
        """Any valid access token for this API."""
        return {"sub": found["sub"], "client_id": found["client_id"], "scope": found["scope"]}

    @app.get("/api/notes")
    async def notes(found: Annotated[dict[str, Any], scoped("notes:read")]) -> dict[str, Any]:
        """Needs the ``notes:read`` scope."""
        return {"owner": found["sub"], "notes": ["first note", "second note"]}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", required=True, help="auth-service's issuer (public URL)")
    parser.add_argument("--audience", required=True, help="this API's resource identifier")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--leeway", type=int, default=0, help="clock skew allowed, seconds")
    parser.add_argument("--refetch-interval", type=float, default=30.0)
    args = parser.parse_args()
    settings = Settings(args.issuer, args.audience, args.leeway, args.refetch_interval)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
