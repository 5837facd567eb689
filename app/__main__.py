"""`python -m app` starts the server (HOST, PORT and every other setting from the environment and `.env`).

`python -m app download [MODEL...]` fetches model weights into MODELS_DIR ahead of time.
"""

from __future__ import annotations

import sys


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
    import uvicorn

    from app.logs import configure_logging
    from app.server import create_app

    configure_logging(settings.http.log_level, settings.http.log_json)
    try:
        app = create_app(settings)  # checks what needs the model registry (AUTO_ROUTES)
    except SettingsError as exc:
        print(f"Invalid configuration: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=settings.http.host,
        port=settings.http.port,
        log_level=settings.http.log_level.lower(),
        log_config=None,  # uvicorn's records go through our structlog renderer (app/logs.py)
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
