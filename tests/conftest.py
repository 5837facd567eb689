from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import app  # noqa: F401  (first: turns third-party telemetry off before onnxruntime can load)
from tests.server import AUDIO, ServerProcess, tiny_server


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    return AUDIO


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def audio_url() -> Iterator[str]:
    """Base URL of a static file server over the test recordings (servers reading it need ALLOW_PRIVATE_URLS)."""
    handler = functools.partial(_QuietHandler, directory=str(AUDIO))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def whisper_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The real server with the bundled Whisper tiny.en, default settings otherwise."""
    with tiny_server(tmp_path_factory.mktemp("whisper-server"), MAX_AUDIO_SECONDS="600") as server:
        yield server


from tests.gigaam_fixture import tiny_gigaam_models_dir  # noqa: E402, F401  (shared session fixture)
