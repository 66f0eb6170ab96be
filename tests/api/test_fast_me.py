"""``GET /v1/users/me`` answered in front of FastAPI from the identity cache (web/fast_me.py,
ADR 0432): the same status, headers and bytes as the routed path through every middleware,
counted and logged the same, and only when the cache holds the answer. Redis is configured
(the invalidation bus is healthy, so the identity cache serves)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from auth_service.observability import tracing
from auth_service.web import fast_me
from tests.support.api import Api
from tests.support.dpop import Holder
from tests.support.settings import PASSWORD
from tests.support.spans import record_spans

pytestmark = [pytest.mark.redis]

ME = "/v1/users/me"
# A request with a Content-Length goes to the full stack: the previous behaviour.
ROUTED = {"Content-Length": "0"}


@pytest.fixture
def settings_overrides(redis_url: str) -> dict[str, Any]:
    return {"redis": {"url": redis_url}}


def _comparable(headers: object) -> list[tuple[str, str]]:
    pairs = [(k.lower(), v) for k, v in headers.multi_items()]  # type: ignore[attr-defined]
    return [(k, v) for k, v in pairs if k != "x-request-id"]


class Spy:
    """Counts the fast path's answers (``_answer`` returning a body)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answered = 0
        real = fast_me.MeFastPath._answer

        async def answer(layer: fast_me.MeFastPath, scope: Any, auth: str | None) -> bytes | None:
            body = await real(layer, scope, auth)
            self.answered += body is not None
            return body

        monkeypatch.setattr(fast_me.MeFastPath, "_answer", answer)


async def test_answers_as_the_full_stack_does(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    user = await api.user()
    bearer = api.bearer(user["access_token"])
    routed = await api.client.get(ME, headers={**bearer, **ROUTED})  # fills the cache
    assert spy.answered == 0
    fast = await api.client.get(ME, headers=bearer)
    assert spy.answered == 1
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    assert _comparable(fast.headers) == _comparable(routed.headers)  # same order too
    assert fast.headers["x-request-id"] != routed.headers["x-request-id"]
    honoured = await api.client.get(ME, headers={**bearer, "X-Request-ID": "abc-123"})
    assert honoured.headers["x-request-id"] == "abc-123"
    assert spy.answered == 2


async def test_counted_like_the_route(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    user = await api.user()
    bearer = api.bearer(user["access_token"])
    assert (await api.client.get(ME, headers=bearer)).status_code == 200  # fills

    before = await api.requests_counted(ME)
    for _ in range(3):
        assert (await api.client.get(ME, headers=bearer)).status_code == 200
    assert spy.answered == 3
    assert await api.requests_counted(ME) == before + 3


async def test_everything_else_takes_the_full_stack(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(monkeypatch)
    user = await api.user()
    bearer = api.bearer(user["access_token"])
    assert (await api.client.get(ME)).status_code == 401  # no token: the route's problem
    bad = await api.client.get(ME, headers=api.bearer("not-a-token"))
    assert bad.status_code == 401
    assert bad.headers["content-type"] == "application/problem+json"
    assert (await api.client.get(ME, headers=bearer)).status_code == 200  # a miss: fills
    assert spy.answered == 0
    cors = await api.client.get(ME, headers={**bearer, "Origin": "https://elsewhere.example"})
    assert cors.status_code == 200
    assert spy.answered == 0
    assert (await api.client.head(ME, headers=bearer)).status_code in (200, 405)
    assert spy.answered == 0
    # Revoked: the cache forgot it, the full stack answers the problem.
    out = await api.client.post("/v1/auth/logout", json={"refresh_token": user["refresh_token"]})
    assert out.status_code == 204
    gone = await api.client.get(ME, headers=bearer)
    assert gone.status_code == 401
    assert gone.json()["detail"] == "the session of this token has ended"
    assert spy.answered == 0


async def test_a_dpop_bound_token_has_its_proof_checked_on_every_request(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue #19: the identity cache must not let a DPoP-bound token skip its proof. With the
    # cache on (Redis) and the session in it, every request still takes the full stack.
    spy = Spy(monkeypatch)
    holder = Holder(api)
    email = f"dpop-{uuid.uuid4().hex[:10]}@example.com"
    assert (await api.register(email, PASSWORD)).status_code == 202
    signed_in = await api.login(email, PASSWORD, headers={"DPoP": holder.proof("/v1/auth/login")})
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["access_token"]
    for _ in range(2):  # the first fills the cache, the second would be answered from it
        me = await api.client.get(ME, headers=holder.headers(ME, token))
        assert me.status_code == 200, me.text
    replayed = holder.headers(ME, token)
    assert (await api.client.get(ME, headers=replayed)).status_code == 200
    again = await api.client.get(ME, headers=replayed)
    assert again.status_code == 401
    assert "already used" in again.json()["detail"]
    as_bearer = await api.client.get(ME, headers=api.bearer(token))  # no proof at all
    assert as_bearer.status_code == 401
    assert "DPoP-bound" in as_bearer.json()["detail"]
    assert spy.answered == 0


async def test_traced_or_not_the_fast_path_answers_and_a_traced_one_has_its_span(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tracing configured used to send every request to the full stack: three times the CPU
    # of `me` (bench/README.md, "what tracing does to me"); then only the sampled ones, which
    # still cost +60 % at 10 % sampling. Now every request is answered here, and the traced
    # ones (a sampled root, a sampled traceparent) get the server span the full stack gives.
    spy = Spy(monkeypatch)
    user = await api.user()
    bearer = api.bearer(user["access_token"])
    assert (await api.client.get(ME, headers=bearer)).status_code == 200  # fills
    recorded = record_spans(monkeypatch, 0.0)  # no root sampled
    assert (await api.client.get(ME, headers=bearer)).status_code == 200
    assert spy.answered == 1
    assert recorded.spans() == []

    trace_id, caller = "1" * 32, "2" * 16
    unsampled_parent = {"traceparent": f"00-{trace_id}-{caller}-00"}
    assert (await api.client.get(ME, headers={**bearer, **unsampled_parent})).status_code == 200
    assert spy.answered == 2
    assert recorded.spans() == []

    sampled_parent = {"traceparent": f"00-{trace_id}-{caller}-01"}
    continued = await api.client.get(ME, headers={**bearer, **sampled_parent})
    assert continued.status_code == 200
    assert spy.answered == 3
    [span] = recorded.spans()
    assert span.name == "GET /v1/users/me"
    assert span.kind is SpanKind.SERVER
    assert span.context is not None
    assert span.parent is not None
    assert (span.context.trace_id, span.parent.span_id) == (int(trace_id, 16), int(caller, 16))
    assert span.attributes is not None
    assert span.attributes["http.route"] == ME
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["http.request.method"] == "GET"
    assert span.start_time is not None
    assert span.end_time is not None
    assert span.start_time <= span.end_time

    recorded.clear()
    monkeypatch.setattr(tracing, "_root_rate", 1.0)  # every root sampled
    assert (await api.client.get(ME, headers=bearer)).status_code == 200
    assert spy.answered == 4
    [root] = recorded.spans()
    assert root.name == "GET /v1/users/me"
    assert root.parent is None
    # A miss still goes to the full stack, its decision kept (no span of the front).
    recorded.clear()
    other = await api.user()
    missed = await api.client.get(ME, headers=api.bearer(other["access_token"]))
    assert missed.status_code == 200
    assert spy.answered == 4
    assert recorded.named("GET /v1/users/me") == []
