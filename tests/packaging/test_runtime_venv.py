"""The runtime as the image installs it: `tests/image.py` carries out the Dockerfile (its build stage's `uv sync
--frozen --no-dev` into the venv the runtime stage copies; the app from the `.dockerignore`-filtered context). It is
small and torch-free, and on its own (its WORKDIR and ENV, nothing of the repository or of this environment) the
server its CMD starts transcribes and diarizes, and its HEALTHCHECK tells a serving server from none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.image import Image, image_server
from tests.server import AUDIO, ServerProcess, free_port

MAX_VENV_MB = 750


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


@pytest.fixture(scope="module")
def runtime_server(image: Image, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("runtime-server")
    settings = {"MODEL": "tiny.en", "ALLOWED_MODELS": "tiny.en", "ALLOW_PRIVATE_URLS": "true"}
    with image_server(image, tmp, **settings) as server:
        yield server


@pytest.mark.slow
def test_runtime_venv_is_small_and_has_no_torch(image: Image) -> None:
    venv = image.path("/opt/venv")
    assert _size_mb(venv) <= MAX_VENV_MB
    site = next(venv.glob("lib/python3*/site-packages"))
    for heavy in ("torch", "torchaudio", "triton", "numba", "llvmlite", "librosa", "gigaam", "resemblyzer", "hydra"):
        assert not (site / heavy).exists(), heavy
    assert not list(site.glob("nvidia*"))


@pytest.mark.slow
def test_the_image_runs_only_what_it_copied(image: Image) -> None:
    found = image.run(["python", "-c", "import app, sys; print(app.__file__); print(sys.executable)"])
    assert found.returncode == 0, found.stderr
    app_file, python = found.stdout.split()
    assert Path(app_file).is_relative_to(image.workdir) and Path(python).is_relative_to(image.path("/opt/venv"))
    for absent in ("tests", "tools", "torch"):  # the repository's other folders and the dev tools are not there
        assert image.run(["python", "-c", f"import {absent}"]).returncode != 0, absent


@pytest.mark.slow
def test_runtime_venv_transcribes(runtime_server: ServerProcess) -> None:
    with open(AUDIO / "beckett.wav", "rb") as f:
        response = httpx.post(f"{runtime_server.url}/v1/audio/transcriptions", files={"file": f}, timeout=120)
    assert response.status_code == 200, response.text
    assert "fail better" in response.json()["text"].lower()


@pytest.mark.slow
def test_runtime_venv_diarizes(runtime_server: ServerProcess, audio_url: str) -> None:
    response = httpx.post(
        f"{runtime_server.url}/diarize", params={"audio_file_url": f"{audio_url}/endgame_nagg_nell.wav"}, timeout=300
    )
    assert response.status_code == 200, response.text
    assert {turn["speaker"] for turn in response.json()["diarization"]} == {0, 1}


@pytest.mark.slow
def test_the_healthcheck_tells_a_serving_server_from_none(image: Image, runtime_server: ServerProcess) -> None:
    assert image.run(image.health_cmd, PORT=str(runtime_server.port)).returncode == 0
    assert image.run(image.health_cmd, PORT=str(free_port())).returncode != 0
