"""The bearer path's identity cache on a real `auth-service serve --workers 2` over PostgreSQL
and Redis (ADR 0430, 0431). Each HTTP connection stays on the worker that accepted it; the test
finds which worker that is (the server side of the connection in /proc), so "every worker" is
checked, not assumed. Everything is proved by ordering:

- the cache really serves (a revocation written straight into the database, which publishes
  nothing, is not seen by a worker that cached the session);
- a revocation through the service is refused by the revoking worker in the very next request,
  and by the other worker from the first refusal on, never accepted again;
- a profile change is seen by every worker;
- after the workers' subscriptions are killed (CLIENT KILL of exactly their connections), a
  revocation written straight into the database is refused by every worker: the loss emptied
  their caches, and they read the database until the subscription is back, and cache again
  after.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis import Redis

from tests.support.live_server import PASSWORD, LiveServer, run_live_server
from tests.support.services import REDIS_TEST_DB, REDIS_URL
from tests.support.wait import wait_for

# slow: the 2-worker server takes 10-60 s to start (60 s at load 12); the tests are ~3 s.
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

WORKERS = 2


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_live_server(tmp_path_factory.mktemp("cache-workers"), workers=WORKERS) as server:
        yield server


# ---- which worker holds a connection -----------------------------------------------------------


def _group(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # pgrp
                pids.append(int(entry))
    return pids


def _inode(local_port: int, remote_port: int) -> str | None:
    """The inode of the IPv4 TCP socket with these ports (/proc/net/tcp, hex ports)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        local, remote = cols[1], cols[2]
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == (
            remote_port
        ):
            return cols[9]
    return None


def _owner(pids: list[int], inode: str) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


def _worker_of(server: LiveServer, client_port: int) -> int | None:
    """The worker process serving the connection from ``client_port``."""
    assert server.server.process is not None
    inode = _inode(server.server.port, client_port)
    if inode is None:
        return None
    return _owner(_group(server.server.process.pid), inode)


def pinned_clients(server: LiveServer) -> dict[int, httpx.Client]:
    """One client per worker, each on one kept-alive connection to that worker."""
    found: dict[int, httpx.Client] = {}
    spare: list[httpx.Client] = []
    for _ in range(60):
        client = httpx.Client(
            base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=1)
        )
        response = client.get("/.well-known/openid-configuration")
        assert response.status_code == 200
        port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
        pid = _worker_of(server, port)
        if pid is not None and pid not in found:
            found[pid] = client
            if len(found) == WORKERS:
                break
        else:
            spare.append(client)
    for client in spare:
        client.close()
    assert len(found) == WORKERS, f"connections reached {len(found)} worker(s) only"
    return found


# ---- helpers ------------------------------------------------------------------------------


def login(server: LiveServer, email: str) -> dict[str, Any]:
    with server.client() as http:
        response = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def me(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})


def revoke_in_database(server: LiveServer, session_id: str) -> None:
    """Behind the service's back: nothing is published."""

    async def run() -> None:
        conn = await asyncpg.connect(server.database_url)
        try:
            done = await conn.execute(
                "UPDATE sessions SET revoked_at = now(), revoked_reason = 'test' WHERE id = $1",
                uuid.UUID(session_id),
            )
            assert done == "UPDATE 1"
        finally:
            await conn.close()

    asyncio.run(run())


def refused_from_first_refusal(client: httpx.Client, token: str) -> None:
    """Poll until refused (the invalidation arrived), then it stays refused."""
    wait_for(lambda: me(client, token).status_code == 401, timeout=10, what="refusal")
    for _ in range(5):
        assert me(client, token).status_code == 401


# ---- tests --------------------------------------------------------------------------------


def test_a_revocation_reaches_every_worker(two_workers: LiveServer) -> None:
    user = two_workers.new_user()
    clients = pinned_clients(two_workers)
    try:
        victim, control = login(two_workers, user["email"]), login(two_workers, user["email"])
        for client in clients.values():
            assert me(client, victim["access_token"]).status_code == 200
            assert me(client, control["access_token"]).status_code == 200
        # The cache serves: revoked behind the service's back, still accepted everywhere.
        revoke_in_database(two_workers, control["session_id"])
        for client in clients.values():
            assert me(client, control["access_token"]).status_code == 200

        revoker, other = list(clients.values())
        out = revoker.post("/v1/auth/logout", json={"refresh_token": victim["refresh_token"]})
        assert out.status_code == 204
        # The revoking worker dropped its entry before responding.
        refused = me(revoker, victim["access_token"])
        assert refused.status_code == 401
        assert refused.json()["detail"] == "the session of this token has ended"
        refused_from_first_refusal(other, victim["access_token"])
    finally:
        for client in clients.values():
            client.close()


def test_a_profile_change_reaches_every_worker(two_workers: LiveServer) -> None:
    user = two_workers.new_user()
    token = user["access_token"]
    clients = pinned_clients(two_workers)
    try:
        for client in clients.values():
            assert me(client, token).json()["name"] is None
        changer, other = list(clients.values())
        patched = changer.patch(
            "/v1/users/me", json={"name": "Renamed"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert patched.status_code == 200
        assert me(changer, token).json()["name"] == "Renamed"
        wait_for(lambda: me(other, token).json()["name"] == "Renamed", timeout=10, what="rename")
        assert me(other, token).json()["name"] == "Renamed"
    finally:
        for client in clients.values():
            client.close()


def _kill_subscriptions(server: LiveServer) -> int:
    """CLIENT KILL the pub/sub connections of this server's workers, and no one else's."""
    assert server.server.process is not None
    pids = _group(server.server.process.pid)
    redis_port = int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    killed = 0
    with Redis.from_url(REDIS_URL.rsplit("/", 1)[0] + f"/{REDIS_TEST_DB}") as admin:
        for entry in admin.client_list(_type="pubsub"):
            port = int(entry["addr"].rsplit(":", 1)[1])
            inode = _inode(port, redis_port)
            if inode is not None and _owner(pids, inode) is not None:
                killed += int(admin.execute_command("CLIENT", "KILL", "ID", entry["id"]))
    return killed


def test_a_lost_subscription_falls_back_to_the_database(two_workers: LiveServer) -> None:
    user = two_workers.new_user()
    clients = pinned_clients(two_workers)
    try:
        before = login(two_workers, user["email"])
        for client in clients.values():
            assert me(client, before["access_token"]).status_code == 200
        logs = two_workers.server.logs
        lost, subscribed = (
            logs().count('"invalidation_bus_lost"'),
            logs().count('"invalidation_bus_subscribed"'),
        )
        assert _kill_subscriptions(two_workers) == WORKERS
        wait_for(lambda: logs().count('"invalidation_bus_lost"') >= lost + WORKERS, what="loss")
        # Both workers noticed the loss (and emptied their caches): a revocation that
        # publishes nothing is refused by every worker.
        revoke_in_database(two_workers, before["session_id"])
        for client in clients.values():
            assert me(client, before["access_token"]).status_code == 401
        # Re-established: caching again (a revocation behind the service's back is not seen
        # by a worker that cached the session after the recovery).
        wait_for(
            lambda: logs().count('"invalidation_bus_subscribed"') >= subscribed + WORKERS,
            what="re-subscribed",
        )
        after = login(two_workers, user["email"])
        for client in clients.values():
            assert me(client, after["access_token"]).status_code == 200
        revoke_in_database(two_workers, after["session_id"])
        for client in clients.values():
            assert me(client, after["access_token"]).status_code == 200
    finally:
        for client in clients.values():
            client.close()
