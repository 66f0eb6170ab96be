"""Token, introspection and revocation answered in front of FastAPI (web/protocol_front.py,
ADR 0760): the same status, headers and body as the routed path through every middleware,
the same form parsing as Starlette's, and still counted.

A body holding a byte outside the plain form alphabet (``pad=!``: a parameter no endpoint
reads) is handed to the full stack, so each case is asked both ways and compared; a
counting layer under the front proves which way each request went."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from opentelemetry.trace import SpanKind
from starlette.datastructures import Headers
from starlette.formparsers import FormParser
from starlette.types import Receive, Scope, Send

from auth_service.observability import tracing
from auth_service.web.protocol_front import ProtocolFront, parse_form
from tests.support import oauth
from tests.support.api import Api
from tests.support.spans import record_spans

TOKEN = "/oauth2/token"
INTROSPECT = "/oauth2/introspect"
REVOKE = "/oauth2/revoke"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SCOPES = {"oauth": {"scopes": {"reports:read": "Read reports"}}}
# Values that differ between any two answers, whichever way they were made.
VARYING = {"x-request-id", "content-length"}


class Counting:
    """Counts the requests that reach the full stack under the front."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


async def _stack(api: Api) -> Counting:
    await api.client.get("/.well-known/jwks.json")  # Starlette builds the stack on a request
    app = api.client._transport.app  # type: ignore[attr-defined]
    front = app.middleware_stack  # the fast paths in front of FastAPI wrap one another
    while not isinstance(front, ProtocolFront):
        front = front.app
    counting = Counting(front.app)
    front.app = counting
    return counting


def _comparable(headers: Any) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in headers.multi_items() if k.lower() not in VARYING)


async def _both(
    api: Api, stack: Counting, path: str, body: str, headers: dict[str, str]
) -> tuple[Any, Any]:
    """The answer of the front and of the full stack to the same request."""
    before = stack.calls
    fast = await api.client.post(path, content=body.encode(), headers={**FORM, **headers})
    assert stack.calls == before, "the front did not answer it"
    padded = (body + "&pad=!").encode()
    routed = await api.client.post(path, content=padded, headers={**FORM, **headers})
    assert stack.calls == before + 1, "the full stack did not answer it"
    assert fast.status_code == routed.status_code, (fast.text, routed.text)
    assert _comparable(fast.headers) == _comparable(routed.headers)
    assert fast.headers["x-request-id"]
    assert routed.headers["x-request-id"]
    return fast, routed


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.mark.parametrize("settings_overrides", [SCOPES], indirect=True)
async def test_every_answer_is_the_full_stacks(api: Api) -> None:
    stack = await _stack(api)
    registered = await oauth.client(
        api,
        grant_types=("client_credentials",),
        scope="reports:read",
        redirect_uris=(),
        resources=("https://api.example.com/",),
    )
    post = await oauth.client(
        api,
        grant_types=("client_credentials",),
        scope="reports:read",
        redirect_uris=(),
        token_endpoint_auth_method="client_secret_post",
    )
    assert post.secret is not None
    basic = registered.basic
    cc = "grant_type=client_credentials"

    fast, routed = await _both(api, stack, TOKEN, cc + "&scope=reports%3Aread", basic)
    assert fast.status_code == 200
    a, b = fast.json(), routed.json()
    assert a.keys() == b.keys() == {"access_token", "token_type", "expires_in", "scope"}
    assert (a["token_type"], a["scope"], a["expires_in"]) == (
        b["token_type"],
        b["scope"],
        b["expires_in"],
    )
    assert fast.headers["cache-control"] == "no-store"
    assert fast.headers["content-type"] == "application/json"
    assert fast.headers["content-security-policy"]
    token = a["access_token"]

    resource = cc + "&resource=https%3A%2F%2Fapi.example.com%2F"
    fast, _ = await _both(api, stack, TOKEN, resource, basic)
    assert fast.status_code == 200

    # Client authentication: post, a wrong secret, an unknown client, a malformed header,
    # none at all, a client_id not the authenticated one; form-urlencoded Basic credentials.
    body = f"{cc}&client_id={post.client_id}&client_secret={post.secret}"
    fast, _ = await _both(api, stack, TOKEN, body, {})
    assert fast.status_code == 200
    assert registered.secret is not None
    failures = [
        (cc, _basic(registered.client_id, "wrong")),
        (cc, _basic("nobody", "wrong")),
        (cc, {"Authorization": "Basic !!!"}),
        (cc, {}),
        (cc + "&client_id=someone-else", basic),
    ]
    for failing, headers in failures:
        fast, routed = await _both(api, stack, TOKEN, failing, headers)
        assert fast.status_code == 401
        assert fast.content == routed.content
        assert fast.headers["www-authenticate"].startswith("Basic realm=")
    encoded = _basic(registered.client_id.replace("-", "%2D"), registered.secret)
    fast, _ = await _both(api, stack, TOKEN, cc, encoded)
    assert fast.status_code == 200

    # The request's own errors.
    for failing, status, error in [
        ("scope=reports%3Aread", 400, "invalid_request"),  # no grant_type
        (cc + "&grant_type=client_credentials", 400, "invalid_request"),  # twice
        ("grant_type=password", 400, "unsupported_grant_type"),
        ("grant_type=authorization_code&code=x", 400, "unauthorized_client"),
        (cc + "&scope=openid", 400, "invalid_scope"),
        (body, 400, "invalid_request"),  # two authentication methods
        (cc + "&resource=https%3A%2F%2Fother.example%2F", 400, "invalid_target"),
    ]:
        fast, routed = await _both(api, stack, TOKEN, failing, basic)
        assert (fast.status_code, fast.json()["error"]) == (status, error), fast.text
        assert fast.content == routed.content

    # Introspection and revocation.
    fast, routed = await _both(api, stack, INTROSPECT, f"token={token}", basic)
    assert fast.json() == routed.json()
    assert fast.json()["active"] is True
    fast, routed = await _both(api, stack, INTROSPECT, "token=nothing", basic)
    assert fast.json() == routed.json() == {"active": False}
    fast, routed = await _both(api, stack, INTROSPECT, f"token={token}", {})
    assert fast.status_code == 401
    fast, routed = await _both(api, stack, REVOKE, f"token={token}", basic)
    assert fast.status_code == 200
    assert fast.content == routed.content == b""
    assert "content-type" not in fast.headers
    fast, _ = await _both(api, stack, INTROSPECT, f"token={token}", basic)
    assert fast.json() == {"active": False}


async def test_what_the_front_does_not_answer_goes_to_the_full_stack(api: Api) -> None:
    stack = await _stack(api)
    registered = await oauth.client(api, grant_types=("client_credentials",), scope="")
    cc = "grant_type=client_credentials"
    routed = [
        ("POST", cc + ";x=1", FORM),  # Starlette's parser decides what ";" means
        ("POST", cc + "&&x=1", FORM),
        ("POST", cc + "&x", FORM),
        ("POST", cc + "&x=a=b", FORM),
        ("POST", cc + "&name=%C3%A9t%C3%A9&raw=\u00e9", FORM),
        ("POST", cc, {"Content-Type": "application/json"}),  # the route's message
        ("POST", cc, {**FORM, "Origin": "https://elsewhere.example"}),  # CORS decides
        ("GET", "", {}),
    ]
    for method, body, headers in routed:
        before = stack.calls
        r = await api.client.request(
            method, TOKEN, content=body.encode(), headers={**headers, **registered.basic}
        )
        assert stack.calls == before + 1, (method, body, headers)
        assert r.status_code in (200, 400, 405), r.text
    r = await api.client.post(
        TOKEN, content=b"grant_type=client_credentials", headers={**FORM, **registered.basic}
    )
    assert r.status_code == 200


async def test_the_front_is_counted_logged_and_keeps_the_request_id(api: Api) -> None:
    await _stack(api)
    registered = await oauth.client(api, grant_types=("client_credentials",), scope="")

    def count(scrape: str, status: str) -> float:
        for line in scrape.splitlines():
            if (
                line.startswith("auth_http_requests_total{")
                and f'route="{TOKEN}"' in line
                and 'method="POST"' in line
                and f'status_class="{status}"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    scrape = (await api.management.get("/metrics")).text
    ok, failed = count(scrape, "2xx"), count(scrape, "4xx")
    headers = {**FORM, **registered.basic, "X-Request-ID": "abc-123"}
    for _ in range(3):
        r = await api.client.post(TOKEN, content=b"grant_type=client_credentials", headers=headers)
        assert r.status_code == 200
        assert r.headers["x-request-id"] == "abc-123"
    r = await api.client.post(
        TOKEN, content=b"grant_type=client_credentials", headers={**FORM, "X-Request-ID": "a b"}
    )
    assert r.status_code == 401
    assert r.headers["x-request-id"] not in ("a b", "")
    scrape = (await api.management.get("/metrics")).text
    assert (count(scrape, "2xx"), count(scrape, "4xx")) == (ok + 3, failed + 1)


async def test_traced_or_not_the_front_answers_and_a_traced_one_has_its_server_span(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The front used to step aside for every request whenever tracing was configured.
    stack = await _stack(api)
    registered = await oauth.client(api, grant_types=("client_credentials",), scope="")
    cc = b"grant_type=client_credentials"
    recorded = record_spans(monkeypatch, 0.0)  # no root sampled
    r = await api.client.post(TOKEN, content=cc, headers={**FORM, **registered.basic})
    assert r.status_code == 200
    assert stack.calls == 0
    assert recorded.spans() == []  # not sampled: no span, the signing's neither

    monkeypatch.setattr(tracing, "_root_rate", 1.0)  # every root sampled
    r = await api.client.post(TOKEN, content=cc, headers={**FORM, **registered.basic})
    assert r.status_code == 200
    assert stack.calls == 0
    [server] = recorded.named("POST /oauth2/token")
    assert server.kind is SpanKind.SERVER
    assert server.parent is None
    assert server.attributes is not None
    assert server.attributes["http.route"] == TOKEN
    assert server.attributes["http.response.status_code"] == 200
    [signing] = recorded.named("token.sign")  # the work ran under the server span
    assert server.context is not None
    assert signing.parent is not None
    assert signing.parent.span_id == server.context.span_id

    recorded.clear()
    trace_id, caller = "3" * 32, "4" * 16
    parent = {"traceparent": f"00-{trace_id}-{caller}-01"}
    wrong = {**FORM, **_basic(registered.client_id, "wrong"), **parent}
    r = await api.client.post(TOKEN, content=cc, headers=wrong)
    assert r.status_code == 401
    assert stack.calls == 0
    [failed] = recorded.named("POST /oauth2/token")
    assert failed.context is not None
    assert failed.parent is not None
    assert (failed.context.trace_id, failed.parent.span_id) == (int(trace_id, 16), int(caller, 16))
    assert failed.attributes is not None
    assert failed.attributes["http.response.status_code"] == 401
    assert recorded.named("token.sign") == []

    # What the front hands on keeps the head decision it took (one roll per request).
    recorded.clear()
    monkeypatch.setattr(tracing, "_root_rate", 0.0)
    seen: list[Any] = []
    real = stack.app

    async def noting(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope.get(tracing.HEAD_DECISION))
        await real(scope, receive, send)

    stack.app = noting
    padded = cc + b"&pad=!"
    r = await api.client.post(TOKEN, content=padded, headers={**FORM, **registered.basic})
    assert r.status_code == 200
    assert seen == [False]
    assert recorded.spans() == []


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=client_credentials",
        b"grant_type=client_credentials&scope=a+b&resource=https%3A%2F%2Fx.example%2F",
        b"a=&b=%20&c=%2B+%25&d=%zz&e=%E2%82%AC&f=%FF&%61=1",
        b"client_id=abc%3A%2D&client_secret=-._~*:/",
        b"x=1&x=2&resource=https://a.example/&resource=https://b.example/",
    ],
)
async def test_plain_forms_parse_as_starlette_parses_them(body: bytes) -> None:
    async def stream() -> Any:
        yield body

    headers = Headers({"content-type": "application/x-www-form-urlencoded"})
    expected = (await FormParser(headers, stream()).parse()).multi_items()
    assert parse_form(body) == expected


@pytest.mark.parametrize(
    "body", [b"", b"a", b"a=1&", b"&a=1", b"a=1;b=2", b"a=b=c", b"=1", b"a=\xc3\xa9", b"a=1 2"]
)
def test_other_forms_are_left_to_starlette(body: bytes) -> None:
    assert parse_form(body) is None
