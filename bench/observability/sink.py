"""An OTLP/HTTP endpoint that accepts every export and drops it, for `make bench` runs with
tracing on: ``python -m bench.observability.sink 24318`` then
``BENCH_SERVICE_ENV=OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24318,...``. Prints the
bytes received when stopped (Ctrl-C or SIGTERM), so a run can show its spans were exported."""

from __future__ import annotations

import signal
import sys
from http.server import ThreadingHTTPServer

from bench.observability.run import Sink


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 24318
    server = ThreadingHTTPServer(("127.0.0.1", port), Sink)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"OTLP sink on http://127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        print(f"OTLP bytes received: {Sink.spans_bytes}", flush=True)


if __name__ == "__main__":
    main()
