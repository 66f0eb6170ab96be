"""`make bench-oidc`: auth-service's token endpoint against panva's oidc-provider, same run.

Starts, on this machine:

- auth-service in production mode (`auth-service serve --workers N`, N = CPU count) on a
  fresh PostgreSQL database ``auth_bench_oidc`` and Redis index 12, set up as `make bench`
  sets it up (bench/run.py: ``service_env``, every rate limit raised but still evaluated);
- oidc-provider 9 from tests/harness/node_modules (bench/oidc/oidc-provider.mjs), its
  in-memory adapter, twice: opaque access tokens (its default) and RFC 9068 JWTs signed with
  ES256 for a resource (what auth-service issues);

then drives each in turn with wrk (bench/oidc/*.lua) and writes
``bench/results/oidc-<date>/report.md`` and ``results.json``.

Scenarios: client_credentials at saturation (64 connections), the same paced at one common
rate for both (p99 under the same load), introspection of a client_credentials token,
auth-service's refresh_token grant with rotation (16 chains), and its device poll loop (RFC
8628: 16 devices each polling a pending device code back to back; every answer is slow_down
or authorization_pending), reported as polls per service CPU-second. CPU seconds per token are read
from /proc for the server processes (auth-service's master and workers; node), and for
auth-service also its PostgreSQL backends and Redis.

Knobs: BENCH_DURATION (s per scenario, 15), BENCH_WORKERS, BENCH_PROFILE=1 (py-spy on one
worker during auth-service's client_credentials), BENCH_OUT, BENCH_SERVICE_ENV (as bench/run.py),
BENCH_NODE_PORT (oidc-provider opaque; JWT on the next port; 18180).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

# bench/run.py reads its knobs at import: this benchmark's own database and Redis index.
os.environ.setdefault("BENCH_DB", "auth_bench_oidc")
os.environ.setdefault("BENCH_REDIS_DB", "12")
os.environ.setdefault("BENCH_USERS", "64")
os.environ.setdefault("BENCH_PORT", "18280")
os.environ.setdefault("BENCH_MANAGEMENT_PORT", "19290")
os.environ.setdefault(
    "BENCH_OUT",
    str(Path(__file__).resolve().parents[1] / "results" / f"oidc-{dt.date.today().isoformat()}"),
)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import run as bench

ROOT = bench.ROOT
HERE = Path(__file__).resolve().parent
SCRIPTS = os.path.relpath(HERE, bench.LUA)  # wrk scripts of this directory, from bench/lua
AUDIENCE = "https://api.bench.invalid"
SCOPE = "api:read"
REDIRECT = "http://127.0.0.1:9/callback"
# BENCH_NODE_PORT: the opaque provider's port, the JWT one's is the next (a run beside another).
_NODE_PORT = int(os.environ.get("BENCH_NODE_PORT") or 18180)
NODE_PORTS = {"opaque": _NODE_PORT, "jwt": _NODE_PORT + 1}
CONNECTIONS = 64
REFRESH_CHAINS = 16
DEVICES = 16
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def basic(client_id: str, secret: str) -> str:
    return base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def post_form(url: str, form: dict[str, str], auth: str) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Authorization": f"Basic {auth}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def create_client(env: dict[str, str], *options: str) -> dict[str, str]:
    done = subprocess.run(
        [str(bench.BIN / "auth-service"), "clients", "create", *options, "--format", "json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    created: dict[str, str] = json.loads(done.stdout)
    return created


# ---- refresh tokens through the real code flow -----------------------------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Browser:
    """Just enough of a browser for the hosted pages over plain HTTP: cookies kept by hand
    (the production cookies are ``Secure``; urllib's jar would never send them to
    http://127.0.0.1), redirects followed one by one, the public origin on form posts."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}
        self.opener = urllib.request.build_opener(NoRedirect)

    def request(self, url: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        if url.startswith("/"):
            url = self.base + url
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Origin"] = bench.CONFIG_PUBLIC_URL
        req = urllib.request.Request(url, data=data, headers=headers)
        try:
            response = self.opener.open(req, timeout=30)
        except urllib.error.HTTPError as exc:
            response = exc
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        body = response.read().decode(errors="replace")
        location = response.headers.get("Location", "")
        if location.startswith(bench.CONFIG_PUBLIC_URL):
            location = location[len(bench.CONFIG_PUBLIC_URL) :]
        return response.status, location, body

    def authorize(self, params: dict[str, str], email: str) -> str:
        """The code the authorization endpoint redirects to the client with."""
        status, location, body = self.request("/oauth2/authorize?" + urllib.parse.urlencode(params))
        for _ in range(10):
            if location.startswith(REDIRECT):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
                if "code" not in query:
                    raise SystemExit(f"authorization refused: {location}")
                return query["code"][0]
            if status in (302, 303) and location:
                status, location, body = self.request(location)
                continue
            fields = login_form(body)
            if fields is None:
                raise SystemExit(f"unexpected page in the code flow (HTTP {status}): {body[:300]}")
            fields.update(email=email, password=bench.PASSWORD)
            status, location, body = self.request("/login", fields)
        raise SystemExit("too many redirects in the code flow")


def login_form(html: str) -> dict[str, str] | None:
    """The hidden fields of the page's password form (the one posting to /login)."""
    for match in re.finditer(r"<form[^>]*>.*?</form>", html, re.S):
        form = match.group(0)
        if 'action="/login"' in form and 'name="password"' in form:
            return dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form))
    return None


def refresh_tokens(base: str, client: dict[str, str], count: int) -> list[str]:
    """``count`` grants of distinct seeded users: authorization code + PKCE, then redeemed."""
    auth = basic(client["client_id"], client["client_secret"])
    tokens = []
    for i in range(count):
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        params = {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": REDIRECT,
            "scope": "openid offline_access",
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
        code = Browser(base).authorize(params, f"user{i}@bench.invalid")
        status, body = post_form(
            f"{base}/oauth2/token",
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            },
            auth,
        )
        if status != 200 or "refresh_token" not in body:
            raise SystemExit(f"code exchange failed: {status} {body}")
        tokens.append(body["refresh_token"])
    return tokens


def device_codes(base: str, client: dict[str, str], count: int) -> list[str]:
    """``count`` pending device codes (RFC 8628 device authorization requests)."""
    auth = basic(client["client_id"], client["client_secret"])
    codes = []
    for _ in range(count):
        status, body = post_form(f"{base}/oauth2/device_authorization", {"scope": "openid"}, auth)
        if status != 200:
            raise SystemExit(f"device authorization failed: {status} {body}")
        codes.append(body["device_code"])
    return codes


def device_summary(result: dict[str, Any], name: str) -> dict[str, Any]:
    """A poll that is answered slow_down or authorization_pending is the scenario working:
    every answered poll counts, not only 2xx."""
    load = result["loads"][0]
    polls = sum(load["status"].values())
    if any(not k.startswith("4") for k in load["status"]):
        raise SystemExit(f"device polls answered {load['status']}")
    row = summary(result, name, with_backends=True)
    cpu = result["service_cpu_s"]
    all_cpu = cpu + row["backends_cpu_s"]
    row.update(
        rate_per_s=round(polls / result["wall_s"], 1),
        ok=polls,
        server_cpu_ms_per_token=round(cpu * 1000 / polls, 3) if polls else None,
        all_cpu_ms_per_token=round(all_cpu * 1000 / polls, 3) if polls else None,
        polls_per_service_cpu_s=round(polls / cpu, 1) if cpu else None,
        polls_per_cpu_s_with_backends=round(polls / all_cpu, 1) if all_cpu else None,
    )
    return row


# ---- servers ---------------------------------------------------------------------------------


class Node(bench.Server):
    """oidc-provider: one process, no workers."""

    def workers(self) -> list[int]:
        return []


def start_oidc_provider(fmt: str, client_id: str, secret: str, work: Path) -> Node:
    port = NODE_PORTS[fmt]
    node = Node(
        f"oidc-provider-{fmt}",
        [
            "node",
            str(HERE / "oidc-provider.mjs"),
            "--port",
            str(port),
            "--client-id",
            client_id,
            "--client-secret",
            secret,
            "--format",
            fmt,
        ],
        {**os.environ, "NODE_ENV": "production"},
        work / f"oidc-provider-{fmt}.log",
    )
    bench.wait_http(f"http://127.0.0.1:{port}/.well-known/openid-configuration")
    return node


def node_version(package: str) -> str:
    path = ROOT / "tests" / "harness" / "node_modules" / package / "package.json"
    return str(json.loads(path.read_text())["version"])


# ---- figures ---------------------------------------------------------------------------------


def summary(result: dict[str, Any], name: str, with_backends: bool) -> dict[str, Any]:
    load = result["loads"][0]
    ok = sum(v for k, v in load["status"].items() if k.startswith("2"))
    cpu = result["service_cpu_s"]
    backends = result["database_cpu_s"] + result["redis_cpu_s"] if with_backends else 0.0
    return {
        "name": name,
        "rate_per_s": round(load["ok_per_s"], 1),
        "status": load["status"],
        "errors": load["errors"],
        "p50_ms": round(load["latency_ms"]["percentiles"]["50"], 2),
        "p99_ms": round(load["latency_ms"]["percentiles"]["99"], 2),
        "offered_per_s": load["offered_per_s"],
        "ok": ok,
        "server_cpu_s": cpu,
        "backends_cpu_s": round(backends, 2),
        "server_cpu_ms_per_token": round(cpu * 1000 / ok, 3) if ok else None,
        "all_cpu_ms_per_token": round((cpu + backends) * 1000 / ok, 3) if ok else None,
    }


def write_report(results: dict[str, Any], out: Path) -> None:
    rows = results["rows"]
    m = results["machine"]
    lines = [
        f"# OAuth benchmark: auth-service vs oidc-provider ({results['started_at']})",
        "",
        f"Machine: {m.get('cpu_model')} x{m.get('cpus')}, Python {m.get('python')}, "
        f"PostgreSQL {m.get('postgresql')}, {m.get('wrk')}; load average before "
        f"{results['loadavg_before']}, after {results['loadavg_after']}; "
        f"auth-service {results['config']['workers']} workers on PostgreSQL; oidc-provider "
        f"{results['oidc_provider_version']} (in-memory adapter, one Node "
        f"{results['node_version']} process); wrk, {results['config']['duration_s']} s "
        "per scenario.",
        "",
        "| scenario | rate /s | p50 ms | p99 ms | status | server CPU ms / token "
        "| + PostgreSQL, Redis |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows.values():
        lines.append(
            f"| {r['name']} | {r['rate_per_s']:,.1f} | {r['p50_ms']} | {r['p99_ms']} "
            f"| {r['status']} | {r['server_cpu_ms_per_token']} | {r['all_cpu_ms_per_token']} |"
        )
    lines += ["", "Ratios (auth-service / oidc-provider):", ""]
    lines += [f"- {k}: **{v}**" for k, v in results["ratios"].items()]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run() -> dict[str, Any]:
    cfg = bench.CONFIG
    cfg.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="auth-bench-oidc-"))
    D = cfg.duration
    results: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": bench.machine(),
        "loadavg_before": loadavg(),
        "config": {"duration_s": D, "workers": cfg.workers, "connections": CONNECTIONS},
        "oidc_provider_version": node_version("oidc-provider"),
        "node_version": subprocess.run(
            ["node", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip(),
    }
    servers: list[bench.Server] = []
    try:
        bench.log(f"fresh database {cfg.db}, redis index {cfg.redis_db}, work dir {work}")
        bench.fresh_database()
        bench.flush_redis()
        env = bench.service_env(work)
        env["AUTH_OAUTH__SCOPES"] = json.dumps({SCOPE: "Read the benchmark API"})
        subprocess.run([str(bench.BIN / "auth-service"), "migrate"], env=env, check=True, cwd=ROOT)
        bench.seed_users(env, count=REFRESH_CHAINS)
        machine_client = create_client(
            env,
            *("--name", "bench machine", "--type", "confidential"),
            *("--grant-type", "client_credentials", "--scope", SCOPE, "--resource", AUDIENCE),
        )
        web_client = create_client(
            env,
            *("--name", "bench web", "--type", "confidential", "--first-party"),
            *("--grant-type", "authorization_code", "--grant-type", "refresh_token"),
            *("--redirect-uri", REDIRECT, "--scope", "openid offline_access"),
        )
        device_client = create_client(
            env,
            *("--name", "bench device", "--type", "confidential"),
            *("--grant-type", DEVICE_GRANT, "--scope", "openid"),
        )
        ours = bench.Server(
            "auth-service",
            [
                str(bench.BIN / "auth-service"),
                "serve",
                *("--workers", str(cfg.workers)),
                *("--port", str(cfg.port), "--management-port", str(cfg.management_port)),
            ],
            env,
            work / "service.log",
        )
        servers.append(ours)
        base = f"http://127.0.0.1:{cfg.port}"
        bench.wait_http(f"http://127.0.0.1:{cfg.management_port}/health/ready")
        time.sleep(2)

        cid, secret = machine_client["client_id"], machine_client["client_secret"]
        # The same client id and secret for oidc-provider: the same bytes on the wire.
        nodes = {fmt: start_oidc_provider(fmt, cid, secret, work) for fmt in NODE_PORTS}
        servers += nodes.values()
        auth = basic(cid, secret)
        targets = {
            "ours": (ours, base, "/oauth2/token", "/oauth2/introspect"),
            "opaque": (
                nodes["opaque"],
                f"http://127.0.0.1:{NODE_PORTS['opaque']}",
                "/token",
                "/token/introspection",
            ),
            "jwt": (
                nodes["jwt"],
                f"http://127.0.0.1:{NODE_PORTS['jwt']}",
                "/token",
                "/token/introspection",
            ),
        }
        labels = {
            "ours": "auth-service (JWT, ES256)",
            "opaque": "oidc-provider, opaque token",
            "jwt": "oidc-provider, JWT ES256 (resource indicator)",
        }
        cc_form = f"grant_type=client_credentials&scope={SCOPE}"
        forms = {
            "ours": cc_form + "&resource=" + urllib.parse.quote(AUDIENCE, safe=""),
            "opaque": cc_form,
            "jwt": cc_form + "&resource=" + urllib.parse.quote(AUDIENCE, safe=""),
        }
        for name, (_, url, token_path, _) in targets.items():
            status, body = post_form(
                url + token_path, dict(urllib.parse.parse_qsl(forms[name])), auth
            )
            if status != 200:
                raise SystemExit(f"{name}: client_credentials answered {status} {body}")

        def wrk(label: str, url: str, path: str, form: str, delay_ms: float = 0) -> bench.Wrk:
            env = {"BENCH_PATH": path, "BENCH_FORM": form, "BENCH_BASIC": auth}
            return bench.Wrk(
                label, f"{SCRIPTS}/form.lua", url, CONNECTIONS, 2, D, env, delay_ms=delay_ms
            )

        raw: dict[str, Any] = {}
        rows: dict[str, Any] = {}

        def scenario(key: str, name: str, target: str, spec: bench.Wrk, profile: bool = False):
            server = targets[target][0]
            raw[key] = bench.measure(key, [spec], server, profile=profile)
            rows[key] = summary(raw[key], name, with_backends=target == "ours")
            time.sleep(2)

        for target, (_, url, token_path, _) in targets.items():
            scenario(
                f"cc_{target}",
                f"client_credentials: {labels[target]}",
                target,
                wrk(f"cc {target}", url, token_path, forms[target]),
                profile=cfg.profile and target == "ours",
            )

        # The same offered load for both: half the slower one's saturated rate.
        paced = 0.5 * min(rows[f"cc_{t}"]["rate_per_s"] for t in targets)
        delay_ms = CONNECTIONS * 1000 / paced
        for target, (_, url, token_path, _) in targets.items():
            scenario(
                f"cc_paced_{target}",
                f"client_credentials paced at {paced:,.0f}/s: {labels[target]}",
                target,
                wrk(f"cc paced {target}", url, token_path, forms[target], delay_ms),
            )

        for target in ("ours", "opaque"):
            _, url, token_path, introspect_path = targets[target]
            _, issued = post_form(
                url + token_path, dict(urllib.parse.parse_qsl(forms[target])), auth
            )
            scenario(
                f"introspect_{target}",
                f"introspection: {labels[target]}",
                target,
                wrk(
                    f"introspect {target}", url, introspect_path, "token=" + issued["access_token"]
                ),
            )

        bench.log(f"{REFRESH_CHAINS} grants through the code flow for refresh")
        files = work / "refresh-tokens"
        files.write_text("\n".join(refresh_tokens(base, web_client, REFRESH_CHAINS)) + "\n")
        web_auth = basic(web_client["client_id"], web_client["client_secret"])
        spec = bench.Wrk(
            "refresh ours",
            f"{SCRIPTS}/refresh.lua",
            base,
            REFRESH_CHAINS,
            REFRESH_CHAINS,
            D,
            {"BENCH_REFRESH_TOKENS": str(files), "BENCH_BASIC": web_auth},
        )
        scenario("refresh_ours", "refresh_token with rotation: auth-service", "ours", spec)

        bench.log(f"{DEVICES} pending device codes for the poll loop")
        codes_file = work / "device-codes"
        codes_file.write_text("\n".join(device_codes(base, device_client, DEVICES)) + "\n")
        device_auth = basic(device_client["client_id"], device_client["client_secret"])
        spec = bench.Wrk(
            "device poll ours",
            f"{SCRIPTS}/device.lua",
            base,
            DEVICES,
            DEVICES,
            D,
            {"BENCH_DEVICE_CODES": str(codes_file), "BENCH_BASIC": device_auth},
        )
        raw["device_poll_ours"] = bench.measure("device_poll_ours", [spec], ours)
        rows["device_poll_ours"] = device_summary(
            raw["device_poll_ours"], "device poll loop (RFC 8628, answered 400): auth-service"
        )

        def ratio(a: float | None, b: float | None) -> float | None:
            return round(a / b, 2) if a and b else None

        ours_cc = rows["cc_ours"]
        results["ratios"] = {
            "client_credentials rate vs opaque (target >= 1.0)": ratio(
                ours_cc["rate_per_s"], rows["cc_opaque"]["rate_per_s"]
            ),
            "client_credentials rate vs JWT (target >= 1.0)": ratio(
                ours_cc["rate_per_s"], rows["cc_jwt"]["rate_per_s"]
            ),
            "tokens per server CPU-second vs opaque": ratio(
                rows["cc_opaque"]["server_cpu_ms_per_token"], ours_cc["server_cpu_ms_per_token"]
            ),
            "tokens per server CPU-second vs JWT": ratio(
                rows["cc_jwt"]["server_cpu_ms_per_token"], ours_cc["server_cpu_ms_per_token"]
            ),
            "tokens per CPU-second incl. PostgreSQL and Redis vs JWT": ratio(
                rows["cc_jwt"]["server_cpu_ms_per_token"], ours_cc["all_cpu_ms_per_token"]
            ),
            "introspection rate vs opaque": ratio(
                rows["introspect_ours"]["rate_per_s"], rows["introspect_opaque"]["rate_per_s"]
            ),
            "device polls per service CPU-second (absolute)": rows["device_poll_ours"][
                "polls_per_service_cpu_s"
            ],
            "device polls per CPU-second incl. PostgreSQL and Redis (absolute)": rows[
                "device_poll_ours"
            ]["polls_per_cpu_s_with_backends"],
        }
        results["rows"] = rows
        results["raw"] = raw
        results["loadavg_after"] = loadavg()
        results["service_log_tail"] = (work / "service.log").read_text()[-3000:]
    finally:
        for server in reversed(servers):
            server.stop()
    return results


def main() -> None:
    results = run()
    out = bench.CONFIG.out
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_report(results, out)
    print((out / "report.md").read_text())


if __name__ == "__main__":
    main()
