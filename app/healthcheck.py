"""`python -m app healthcheck`: the container's health check. Asks the running server's /health over http or https
(as TLS is configured) and exits 0 when it answers 200, 1 otherwise.

The request goes to this machine's loopback, to the server's own port: its certificate is not verified (it need not
name 127.0.0.1, and a check of liveness trusts nothing it gets back).
"""

from __future__ import annotations

import ssl
import sys
import urllib.request

from app.settings import HttpSettings

TIMEOUT_SECONDS = 4.0


def health_url(http: HttpSettings) -> str:
    host = http.host if http.host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # a wildcard listen: ask loopback
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if http.tls_enabled else 'http'}://{host}:{http.port}/health"


def main(http: HttpSettings) -> int:
    context = ssl._create_unverified_context() if http.tls_enabled else None  # noqa: S323 - see the module doc
    try:
        with urllib.request.urlopen(health_url(http), timeout=TIMEOUT_SECONDS, context=context) as response:  # noqa: S310
            healthy = response.status == 200
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0 if healthy else 1
