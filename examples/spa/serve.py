"""Serve the single-page app of examples/spa: static files, its config, and oauth4webapi.

    .venv/bin/python examples/spa/serve.py --issuer http://127.0.0.1:8000 --client-id ID --port 5173

oauth4webapi's ES module comes from the repository's own ``tests/harness/node_modules``
(``scripts/install-test-deps.sh`` installs it from the committed lockfile): no CDN, nothing
fetched at run time. The app's origin (``http://localhost:PORT``) must be in auth-service's
``server.cors_origins`` so the browser may read the token and UserInfo responses.
"""

from __future__ import annotations

import argparse
import http.server
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
OAUTH4WEBAPI = (
    HERE.parents[1] / "tests" / "harness" / "node_modules" / "oauth4webapi" / "build" / "index.js"
)
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def handler(config: dict[str, str]) -> type[http.server.BaseHTTPRequestHandler]:
    issuer_origin = "{0.scheme}://{0.netloc}".format(urlsplit(config["issuer"]))
    # Scripts only from this origin; the app talks to nothing but auth-service.
    csp = (
        f"default-src 'none'; script-src 'self'; style-src 'self'; "
        f"connect-src 'self' {issuer_origin}; base-uri 'none'; frame-ancestors 'none'"
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/config.json":
                self.send(json.dumps(config).encode(), "application/json")
            elif path == "/vendor/oauth4webapi.js":
                self.send(OAUTH4WEBAPI.read_bytes(), TYPES[".js"])
            elif path in ("/", "/callback", "/index.html"):
                self.send((STATIC / "index.html").read_bytes(), TYPES[".html"])
            elif path in ("/app.js", "/app.css"):
                file = STATIC / path.lstrip("/")
                kind = TYPES.get(file.suffix, "text/css; charset=utf-8")
                self.send(file.read_bytes(), kind)
            else:
                self.send(b"not found", "text/plain", 404)

        def send(self, body: bytes, kind: str, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", csp)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", required=True, help="auth-service's issuer (public URL)")
    parser.add_argument("--client-id", required=True, help="a public client's id")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5173)
    parser.add_argument(
        "--base-url", help="the app's URL as the browser sees it (default http://localhost:PORT)"
    )
    parser.add_argument("--scope", default="openid profile email")
    args = parser.parse_args()
    if not OAUTH4WEBAPI.is_file():
        sys.exit(f"{OAUTH4WEBAPI} is missing: run scripts/install-test-deps.sh")
    base = (args.base_url or f"http://localhost:{args.port}").rstrip("/")
    config = {
        "issuer": args.issuer,
        "client_id": args.client_id,
        "redirect_uri": f"{base}/callback",
        "scope": args.scope,
    }
    server = http.server.ThreadingHTTPServer((args.host, args.port), handler(config))
    print(f"serving {base} (issuer {args.issuer})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
