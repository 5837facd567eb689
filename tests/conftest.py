from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import app  # noqa: F401  (first: turns third-party telemetry off before onnxruntime can load)
from tests.server import AUDIO, ServerProcess, tiny_server


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    return AUDIO


@pytest.fixture(scope="session")
def whisper_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The real server with the bundled Whisper tiny.en, default settings otherwise."""
    with tiny_server(tmp_path_factory.mktemp("whisper-server"), MAX_AUDIO_SECONDS="600") as server:
        yield server


from tests.gigaam_fixture import tiny_gigaam_models_dir  # noqa: E402, F401  (shared session fixture)
