from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import app  # noqa: F401  (first: turns third-party telemetry off before onnxruntime can load)
from tests.image import Image, build_image, uv_executable
from tests.server import AUDIO, ServerProcess, static_files, tiny_server
from tests.whisper_base import GERMAN, assemble_whisper_base


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    return AUDIO


@pytest.fixture(scope="session")
def audio_url() -> Iterator[str]:
    """Base URL of a static file server (127.0.0.1) over the test recordings, for audio_file_url requests."""
    with static_files(AUDIO) as url:
        yield url


@pytest.fixture(scope="session")
def whisper_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The real server with the bundled Whisper tiny.en, default settings otherwise."""
    with tiny_server(tmp_path_factory.mktemp("whisper-server"), MAX_AUDIO_SECONDS="600") as server:
        yield server


@pytest.fixture(scope="session")
def whisper_base_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MODELS_DIR holding OpenAI's multilingual Whisper `base` as `base/` (assembled from its two dev-only PyPI
    data packages by `tests/whisper_base.py`): a server with MODEL=base loads it without fetching anything."""
    models = tmp_path_factory.mktemp("whisper-base") / "models"
    assemble_whisper_base(models)
    return models


from tests.gigaam_fixture import tiny_gigaam_models_dir, tiny_multilingual_models_dir  # noqa: E402, F401  (shared)

# What espeak-ng's kk / ky / uz voices read for the GigaAM Multilingual tests (Whisper `base` detects none of them as
# its language: Thai or Latin mostly, see ADR 49).
CENTRAL_ASIAN = {
    "kk": "Сәлеметсіз бе, менің атым Айгүл. Мен Алматыда тұрамын және университетте оқимын.",
    "ky": "Саламатсызбы, менин атым Айбек. Мен Бишкекте жашайм.",
    "uz": "Assalomu alaykum, mening ismim Aziz. Men Toshkentda yashayman.",
}


@pytest.fixture(scope="session")
def central_asian_speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Kazakh, Kyrgyz and Uzbek speech by espeak-ng (`kk.wav`, `ky.wav`, `uz.wav`), by language code."""
    folder = tmp_path_factory.mktemp("central-asian")
    for code, text in CENTRAL_ASIAN.items():
        subprocess.run(["espeak-ng", "-v", code, "-s", "140", "-w", str(folder / f"{code}.wav"), text], check=True)
    return {code: folder / f"{code}.wav" for code in CENTRAL_ASIAN}


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`german.wav` (espeak-ng reading GERMAN) and a copy of the English `beckett.wav`, for uploads and for URLs."""
    folder = tmp_path_factory.mktemp("speech")
    subprocess.run(["espeak-ng", "-v", "de", "-s", "130", "-w", str(folder / "german.wav"), GERMAN], check=True)
    (folder / "beckett.wav").write_bytes((AUDIO / "beckett.wav").read_bytes())
    return folder


@pytest.fixture(scope="session")
def speech_url(speech_dir: Path) -> Iterator[str]:
    with static_files(speech_dir) as url:
        yield url


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The image the Dockerfile builds, carried out on folders (`tests/image.py`): about 30 s, once per session."""
    return build_image(tmp_path_factory.mktemp("image"), uv_executable())
