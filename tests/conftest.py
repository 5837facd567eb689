from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import AUDIO, ServerProcess


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    return AUDIO


@pytest.fixture(scope="session")
def whisper_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The real server with the bundled Whisper tiny.en, default settings otherwise."""
    tmp = tmp_path_factory.mktemp("whisper-server")
    (tmp / "tmp").mkdir()
    server = ServerProcess(
        {
            "MODEL": "tiny.en",
            "ALLOWED_MODELS": "tiny.en",
            "MODELS_DIR": str(tmp / "models"),
            "TMPDIR": str(tmp / "tmp"),
            "MAX_AUDIO_SECONDS": "600",
        },
        log_path=tmp / "server.log",
    )
    server.tmpdir = tmp / "tmp"  # type: ignore[attr-defined]
    yield server
    server.stop()


from tests.gigaam_fixture import tiny_gigaam_models_dir  # noqa: E402, F401  (shared session fixture)
