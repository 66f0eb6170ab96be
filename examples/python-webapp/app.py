"""A small web app that signs its users in through auth-service, with authlib's client.

    .venv/bin/python examples/python-webapp/app.py --issuer http://127.0.0.1:8000 \
        --client-id ID --client-secret SECRET --port 5000

- **Sign in**: authorization code + PKCE (S256). authlib reads the issuer's discovery
  document, checks ``state``, redeems the code with the verifier, and verifies the ID token
  (signature against the issuer's JWKS, ``iss``, ``aud``, ``exp``, ``nonce``); the name and
  email come from the UserInfo endpoint with the access token.
- **Sign out**: the app forgets its session, then sends the browser to auth-service's
  ``end_session_endpoint`` (RP-initiated logout) with ``id_token_hint`` and a registered
  ``post_logout_redirect_uri``, which ends the browser's session at auth-service too.

The session is Starlette's signed cookie (``--session-secret``; a random one per start when
not given, so restarting the app signs everyone out).
"""

from __future__ import annotations

import argparse
import html
import secrets
from typing import Any
from urllib.parse import urlencode

import uvicorn
from authlib.integrations.starlette_client import OAuth, OAuthError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Example app</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto}}</style>
</head><body><h1>Example app</h1>{body}</body></html>"""


def page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(body=body), status_code=status)


def create_app(
    issuer: str, client_id: str, client_secret: str, base_url: str, session_secret: str
) -> Starlette:
    oauth = OAuth()
    oauth.register(
        "auth_service",
        server_metadata_url=issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_id=client_id,
        client_secret=client_secret,
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
    )
    client: Any = oauth.create_client("auth_service")
    base_url = base_url.rstrip("/")

    async def home(request: Request) -> Response:
        user = request.session.get("user")
        if not user:
            return page(
                '<p>You are not signed in.</p><p><a id="sign-in" href="/login">Sign in</a></p>'
            )
        name = html.escape(user.get("name") or "(no name)")
        email = html.escape(user.get("email") or "(no email)")
        return page(
            f'<p>Signed in as <strong id="name">{name}</strong> '
            f'(<span id="email">{email}</span>).</p>'
            '<form method="post" action="/logout"><button id="sign-out">Sign out</button></form>'
        )

    async def login(request: Request) -> Response:
        # authlib makes the state, nonce and PKCE verifier and keeps them in the session.
        response: Response = await client.authorize_redirect(request, base_url + "/callback")
        return response

    async def callback(request: Request) -> Response:
        try:
            # Checks state, redeems the code with the verifier, verifies the ID token.
            token = await client.authorize_access_token(request)
        except OAuthError as exc:
            return page(f"<p>Sign-in failed: {html.escape(exc.error or '')}</p>", 400)
        claims = token["userinfo"]  # the verified ID token's claims
        profile = await client.userinfo(token=token)
        if profile.get("sub") != claims["sub"]:  # OpenID Connect Core section 5.3.2
            return page("<p>Sign-in failed: UserInfo is about another user.</p>", 400)
        request.session["user"] = {
            "sub": claims["sub"],
            "name": profile.get("name"),
            "email": profile.get("email"),
        }
        request.session["id_token"] = token["id_token"]
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        id_token = request.session.get("id_token")
        request.session.clear()
        metadata = await client.load_server_metadata()
        end_session = metadata.get("end_session_endpoint")
        if not end_session or not id_token:
            return RedirectResponse("/", status_code=303)
        query = urlencode(
            {
                "id_token_hint": id_token,
                "post_logout_redirect_uri": base_url + "/",
                "state": secrets.token_urlsafe(16),
            }
        )
        return RedirectResponse(f"{end_session}?{query}", status_code=303)

    async def health(_request: Request) -> Response:
        return Response("ok")

    return Starlette(
        routes=[
            Route("/", home),
            Route("/login", login),
            Route("/callback", callback),
            Route("/logout", logout, methods=["POST"]),
            Route("/health", health),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=session_secret,
                session_cookie="example_app_session",
                same_site="lax",
                https_only=base_url.startswith("https://"),
            )
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", required=True, help="auth-service's issuer (public URL)")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--base-url",
        help="this app's URL as the browser sees it (default http://localhost:PORT; the "
        "client's redirect URI is BASE/callback, its post-logout redirect URI BASE/)",
    )
    parser.add_argument("--session-secret", default=secrets.token_urlsafe(32))
    args = parser.parse_args()
    base_url = args.base_url or f"http://localhost:{args.port}"
    app = create_app(args.issuer, args.client_id, args.client_secret, base_url, args.session_secret)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
