"""`python -m app` starts the server (HOST, PORT and every other setting from the environment and `.env`).

`python -m app download [MODEL...]` fetches model weights into MODELS_DIR ahead of time.
`python -m app healthcheck` asks the running server's /health (http or https, as configured): exit 0 when it answers.
"""

from __future__ import annotations

import asyncio
import sys
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    from app.api.deps import Services

# The request line and headers may take this much; past it h11 refuses the request (400) and closes the connection,
# so a client cannot make the server parse an endless header before auth (ADR 47).
MAX_REQUEST_HEAD_BYTES = 64 * 1024


def main(argv: list[str]) -> int:
    from app.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"Invalid configuration: {exc}", file=sys.stderr)
        return 2
    if argv and argv[0] == "download":
        from app.weights.cli import main as download_main

        return int(download_main(argv[1:]))
    if argv and argv[0] == "healthcheck":
        from app.healthcheck import main as healthcheck_main

        return healthcheck_main(settings.http)
    from app.logs import configure_logging
    from app.server import create_app
    from app.tls import prepare_tls

    configure_logging(settings.http.log_level, settings.http.log_json)
    try:
        tls = prepare_tls(settings.http, settings.engines.models_dir)  # made once, or checked to load
        app = create_app(settings, tls=tls)  # checks what needs the model registry (AUTO_ROUTES)
    except SettingsError as exc:
        print(f"Invalid configuration: {exc}", file=sys.stderr)
        return 2
    ping = settings.realtime.ping_interval_s
    config = uvicorn.Config(
        app,
        host=settings.http.host,
        port=settings.http.port,
        log_level=settings.http.log_level.lower(),
        log_config=None,  # uvicorn's records go through our structlog renderer (app/logs.py)
        access_log=False,
        http="h11",  # httptools has no limit on the size of headers; h11 has one
        h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        ssl_certfile=None if tls is None else str(tls.cert_file),
        ssl_keyfile=None if tls is None else str(tls.key_file),
        # A live session stays open while its socket answers pings (ADR 44): a ping every half of
        # REALTIME_IDLE_TIMEOUT_S, and half of it to answer, so a dead socket is closed within the limit.
        ws_ping_interval=ping,
        ws_ping_timeout=ping,
    )
    _Server(config, app.state.services).run()
    return 0


# Docker waits 10 s after SIGTERM before it kills; requests in progress are answered well before (ADR 48).
SHUTDOWN_GRACE_SECONDS = 8


class _Server(uvicorn.Server):
    """uvicorn's server, whose SIGTERM (or Ctrl-C) first stops the work in progress (`Services.begin_shutdown`), so
    that its graceful shutdown waits for answers that come at once rather than for jobs of any length."""

    def __init__(self, config: uvicorn.Config, services: Services) -> None:
        super().__init__(config)
        self.services = services

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            try:
                loop = asyncio.get_running_loop()  # a signal handler runs on the loop's (main) thread
            except RuntimeError:
                loop = None
            if loop is not None:
                loop.call_soon_threadsafe(self.services.begin_shutdown)
        super().handle_exit(sig, frame)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
