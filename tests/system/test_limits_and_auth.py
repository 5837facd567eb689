"""Auth, size and duration limits and the bounded queue, against a server configured tightly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from openai import OpenAI

from tests.audio_factory import read_wav, tiled, write_wav
from tests.server import ServerProcess, tiny_server
from tests.system.test_openai_api import assert_openai_error

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"REFLECTOR_GPU_APIKEY": KEY, "MAX_UPLOAD_MB": "1", "MAX_AUDIO_SECONDS": "25", "MAX_QUEUE": "1"}
    with tiny_server(tmp_path_factory.mktemp("strict-server"), **env) as server:
        yield server


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upload(server: ServerProcess, path: Path, headers: dict[str, str] | None = None) -> httpx.Response:
    files = {"file": (path.name, path.read_bytes(), "audio/wav")}
    return httpx.post(f"{server.url}/v1/audio/transcriptions", files=files, headers=headers, timeout=120)


def test_missing_or_wrong_key_is_401_with_a_challenge(strict_server: ServerProcess, audio_dir: Path) -> None:
    for headers in (None, auth("wrong"), {"Authorization": KEY}):
        response = upload(strict_server, audio_dir / "beckett.wav", headers)
        assert_openai_error(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_key_from_reflector_gpu_apikey_works_with_the_sdk(strict_server: ServerProcess, audio_dir: Path) -> None:
    client = OpenAI(base_url=f"{strict_server.url}/v1", api_key=KEY, max_retries=0)
    with open(audio_dir / "beckett.wav", "rb") as f:
        assert "better" in client.audio.transcriptions.create(file=f, model="whisper-1").text.lower()
    # Reflector writes the scheme in lower case
    assert upload(strict_server, audio_dir / "beckett.wav", {"Authorization": f"bearer {KEY}"}).status_code == 200


def test_health_needs_no_key(strict_server: ServerProcess) -> None:
    assert httpx.get(f"{strict_server.url}/health").status_code == 200


def test_upload_over_the_limit_is_413(strict_server: ServerProcess, audio_dir: Path) -> None:
    response = upload(strict_server, audio_dir / "two_cities.wav", auth())  # 4.2 MB > 1 MB
    assert_openai_error(response, 413, param="file")


def test_upload_over_the_limit_without_content_length_is_413(strict_server: ServerProcess) -> None:
    def body() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        for _ in range(40):
            yield b"\x00" * 65536  # 2.5 MB, streamed in chunks with no declared length
        yield b"\r\n--b--\r\n"

    headers = {**auth(), "Content-Type": "multipart/form-data; boundary=b"}
    response = httpx.post(f"{strict_server.url}/v1/audio/transcriptions", content=body(), headers=headers)
    assert_openai_error(response, 413)


def test_audio_longer_than_the_limit_is_400(strict_server: ServerProcess, audio_dir: Path, tmp_path: Path) -> None:
    data, rate = read_wav(audio_dir / "beckett.wav")
    long = write_wav(tmp_path / "long.wav", np.tile(data[::3], 3), rate // 3)  # 30 s at 5.3 kHz: a small file
    error = assert_openai_error(upload(strict_server, long, auth()), 400)
    assert "MAX_AUDIO_SECONDS" in str(error["message"])


def test_a_full_queue_answers_503_at_once(strict_server: ServerProcess, audio_dir: Path, tmp_path: Path) -> None:
    busy = tiled(audio_dir / "beckett.wav", 24.0, tmp_path / "busy.wav")  # ~770 KB at 16 kHz
    first: dict[str, httpx.Response] = {}
    worker = threading.Thread(target=lambda: first.setdefault("r", upload(strict_server, busy, auth())))
    worker.start()
    deadline = time.monotonic() + 30
    while httpx.get(f"{strict_server.url}/health").json()["queue"]["admitted"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    rejected = upload(strict_server, audio_dir / "beckett.wav", auth())
    assert worker.is_alive()  # at once: refused while the first job was still running, not after it
    assert_openai_error(rejected, 503)
    assert int(rejected.headers["retry-after"]) > 0
    worker.join(timeout=120)
    assert first["r"].status_code == 200
    metrics = httpx.get(f"{strict_server.url}/metrics").text
    assert "stt_rejected_total 1.0" in metrics
    assert 'stt_requests_total{route="/v1/audio/transcriptions",status="503"} 1.0' in metrics
