"""Fixtures of the harness tests: the relying party's web server, and clients registered on
the session's live server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.harness import Harness
from tests.support.live_server import LiveServer
from tests.support.oidc_harness import ClientEndpoint, Clients, RelyingParty


@pytest.fixture(scope="session")
def endpoint() -> Iterator[ClientEndpoint]:
    """Where the clients' redirect and post-logout URIs point (a loopback web server)."""
    with ClientEndpoint() as server:
        yield server


@pytest.fixture(scope="session")
def clients(live_server: LiveServer, endpoint: ClientEndpoint) -> Clients:
    """Registers clients on ``live_server`` through the admin API."""
    return Clients(live_server, endpoint)


@pytest.fixture
def rp(harness: Harness, live_server: LiveServer, clients: Clients) -> RelyingParty:
    """Runs the OpenID Connect scenarios (tests/harness/scenarios/oidc-*.mjs)."""
    return RelyingParty(harness, live_server, clients)
