"""A FAKE upstream OAuth2 provider for the federation tests: a small HTTP server on
127.0.0.1 that speaks GitHub's OAuth2 and REST shapes (as a GitHub Enterprise Server host:
``/login/oauth/authorize``, ``/login/oauth/access_token``, ``/api/v3/user`` and
``/api/v3/user/emails``) and a generic OAuth2 provider's (``/oauth2/authorize``,
``/oauth2/token`` with client_secret_basic, ``/oauth2/userinfo`` with nested fields).

It is a fake because neither GitHub nor a generic OAuth2-only provider can run here; the
shapes follow GitHub's REST documentation (token errors answered with 200 and ``error``,
``id`` numeric, emails as a list with ``primary`` and ``verified``). The "user" who signs in
at the authorization endpoint is ``server.user`` (set by the test), with ``server.emails``.

    with oauth2_upstream(client_id="gh", client_secret="s") as up:
        up.user = {"id": 42, "login": "octo", "name": "Octo Cat"}
        up.emails = [{"email": "o@example.com", "primary": True, "verified": True}]
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from tests.support.loopback import LoopbackServer, QuietHandler


@dataclass
class Grant:
    user: dict[str, Any]
    emails: list[dict[str, Any]]
    redirect_uri: str
    challenge: str


@dataclass
class FakeOAuth2:
    base: str
    client_id: str
    client_secret: str
    user: dict[str, Any] = field(default_factory=dict)
    emails: list[dict[str, Any]] = field(default_factory=list)
    # Generic OAuth2: userinfo is {"data": {"account": user}} (a claim mapping needed).
    hits: Counter[str] = field(default_factory=Counter)
    accepts: list[str] = field(default_factory=list)  # Accept headers on the API
    token_forms: list[dict[str, str]] = field(default_factory=list)
    refuse_token: bool = False
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, Grant] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _handler(fake: FakeOAuth2) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if body is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            fake.hits[url.path] += 1
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path in ("/login/oauth/authorize", "/oauth2/authorize"):
                self._authorize(query)
            elif url.path in ("/api/v3/user", "/api/v3/user/emails", "/oauth2/userinfo"):
                self._api(url.path)
            else:
                self._send(404, {"message": "Not Found"})

        def _authorize(self, query: dict[str, str]) -> None:
            # The user is signed in and consents: straight back with a code.
            if query.get("client_id") != fake.client_id or "redirect_uri" not in query:
                self._send(400, {"error": "redirect_uri_mismatch"})
                return
            code = secrets.token_urlsafe(16)
            with fake.lock:
                fake.codes[code] = Grant(
                    dict(fake.user),
                    [dict(e) for e in fake.emails],
                    query["redirect_uri"],
                    query.get("code_challenge", ""),
                )
            back = {"code": code, "state": query.get("state", "")}
            self._send(302, None, {"Location": query["redirect_uri"] + "?" + urlencode(back)})

        def _api(self, path: str) -> None:
            fake.accepts.append(self.headers.get("Accept", ""))
            auth = self.headers.get("Authorization", "")
            grant = fake.tokens.get(auth.removeprefix("Bearer ")) if auth else None
            if grant is None:
                self._send(401, {"message": "Bad credentials"})
            elif path == "/api/v3/user":
                self._send(200, {"login": "someone", "type": "User", **grant.user})
            elif path == "/api/v3/user/emails":
                self._send(200, grant.emails)
            else:
                self._send(200, {"data": {"account": grant.user}})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            fake.hits[url.path] += 1
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if url.path not in ("/login/oauth/access_token", "/oauth2/token"):
                self._send(404, {"message": "Not Found"})
                return
            fake.token_forms.append(form)
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            basic = self.headers.get("Authorization", "")
            if basic.startswith("Basic "):
                pair = base64.b64decode(basic[6:]).decode()
                client_id, _, client_secret = (unquote(p) for p in pair.partition(":"))
            with fake.lock:
                grant = fake.codes.pop(form.get("code", ""), None)
            ok = (
                not fake.refuse_token
                and client_id == fake.client_id
                and client_secret == fake.client_secret
                and grant is not None
                and grant.redirect_uri == form.get("redirect_uri")
                and (not grant.challenge or grant.challenge == _s256(form.get("code_verifier", "")))
            )
            if not ok or grant is None:
                # GitHub's way: a refusal is a 200 with an error member.
                self._send(200, {"error": "bad_verification_code"})
                return
            token = "gho_" + secrets.token_urlsafe(24)
            with fake.lock:
                fake.tokens[token] = grant
            self._send(
                200,
                {
                    "access_token": token,
                    "token_type": "bearer",
                    "scope": "read:user,user:email",
                    "refresh_token": "ghr_" + secrets.token_urlsafe(24),
                    "expires_in": 28800,
                },
            )

    return Handler


@contextlib.contextmanager
def oauth2_upstream(
    *, client_id: str = "upstream-client", client_secret: str = "upstream-client-credential"
) -> Iterator[FakeOAuth2]:
    fake = FakeOAuth2("", client_id, client_secret)
    with LoopbackServer(_handler(fake)) as server:
        fake.base = server.url
        yield fake
