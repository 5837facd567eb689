"""The runtime as the image installs it (`uv sync --frozen --no-dev`): small, torch-free, and on its own it
transcribes and diarizes through the real server."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import AUDIO, ROOT, ServerProcess, tiny_server

MAX_VENV_MB = 750


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    assert Path(found).is_file(), "uv not found (make test bootstraps it)"
    return found


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


@pytest.fixture(scope="module")
def runtime_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([_uv(), "sync", "--frozen", "--no-dev", "-q"], cwd=ROOT, env=env, check=True, timeout=600)
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def runtime_server(runtime_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("runtime-server")
    with tiny_server(tmp, python=str(runtime_python), ALLOW_PRIVATE_URLS="true") as server:
        yield server


@pytest.mark.slow
def test_runtime_venv_is_small_and_has_no_torch(runtime_python: Path) -> None:
    venv = runtime_python.parent.parent
    assert _size_mb(venv) <= MAX_VENV_MB
    site = next(venv.glob("lib/python3*/site-packages"))
    for heavy in ("torch", "torchaudio", "triton", "numba", "llvmlite", "librosa", "gigaam", "resemblyzer", "hydra"):
        assert not (site / heavy).exists(), heavy
    assert not list(site.glob("nvidia*"))


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
