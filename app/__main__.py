"""`python -m app` starts the server (HOST, PORT and every other setting from the environment and `.env`).

`python -m app download [MODEL...]` fetches model weights into MODELS_DIR ahead of time.
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
    from app.logs import configure_logging
    from app.server import create_app

    configure_logging(settings.http.log_level, settings.http.log_json)
    try:
        app = create_app(settings)  # checks what needs the model registry (AUTO_ROUTES)
    except SettingsError as exc:
        print(f"Invalid configuration: {exc}", file=sys.stderr)
        return 2
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
