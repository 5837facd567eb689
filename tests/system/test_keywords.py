"""`keywords[]` (OpenAI's transcription parameter): words or names to favour, given to Whisper as hotwords.

The case is real: espeak-ng says "We deployed Kubernetes on the Raspberry Pi."; the bundled tiny.en hears
"Qber meet" without the keyword and "Kubernetes" with it. Every format accepts keywords; too many is a 400.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.server import ServerProcess
from tests.system.test_openai_api import assert_openai_error

SENTENCE = "We deployed Kubernetes on the Raspberry Pi."
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def kubernetes_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keywords") / "kubernetes.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-s", "140", "-w", str(path), SENTENCE], check=True)
    return path


@pytest.fixture(scope="module")
def client(whisper_server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=f"{whisper_server.url}/v1", api_key="unused", max_retries=0, timeout=TIMEOUT)


def test_a_keyword_is_spelled_as_given(client: OpenAI, kubernetes_wav: Path) -> None:
    with open(kubernetes_wav, "rb") as f:
        plain = client.audio.transcriptions.create(file=f, model="whisper-1")
    with open(kubernetes_wav, "rb") as f:
        favoured = client.audio.transcriptions.create(file=f, model="whisper-1", keywords=["Kubernetes"])
    assert "kubernetes" not in plain.text.lower(), plain.text
    assert "Kubernetes" in favoured.text, favoured.text
    assert "Raspberry Pi" in favoured.text


@pytest.mark.parametrize("response_format", ["json", "text", "verbose_json", "srt", "vtt"])
def test_every_format_takes_keywords(whisper_server: ServerProcess, kubernetes_wav: Path, response_format: str) -> None:
    files = {"file": ("kubernetes.wav", kubernetes_wav.read_bytes(), "audio/wav")}
    form = {"response_format": response_format, "keywords[]": ["Kubernetes", "Raspberry Pi"]}
    response = httpx.post(f"{whisper_server.url}/v1/audio/transcriptions", files=files, data=form, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert "Kubernetes" in response.text


def test_a_stream_takes_keywords(whisper_server: ServerProcess, kubernetes_wav: Path) -> None:
    files = {"file": ("kubernetes.wav", kubernetes_wav.read_bytes(), "audio/wav")}
    form = {"stream": "true", "keywords": "Kubernetes"}
    url = f"{whisper_server.url}/v1/audio/transcriptions"
    with httpx.stream("POST", url, files=files, data=form, timeout=TIMEOUT) as response:
        assert response.status_code == 200
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert "Kubernetes" in json.loads(events[-2])["text"]


def test_too_many_keywords_are_refused(whisper_server: ServerProcess, kubernetes_wav: Path) -> None:
    files = {"file": ("kubernetes.wav", kubernetes_wav.read_bytes(), "audio/wav")}
    form = {"keywords[]": [f"word{i}" for i in range(51)]}
    response = httpx.post(f"{whisper_server.url}/v1/audio/transcriptions", files=files, data=form, timeout=TIMEOUT)
    assert_openai_error(response, 400, param="keywords")
    long_form = {"keywords[]": ["x" * 101]}
    response = httpx.post(f"{whisper_server.url}/v1/audio/transcriptions", files=files, data=long_form, timeout=TIMEOUT)
    assert_openai_error(response, 400, param="keywords")
