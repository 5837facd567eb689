"""GigaAM Multilingual through the whole server: tiny random-weight `multilingual_ctc` (tests/gigaam_fixture.py), and
MODEL=auto with `en=tiny.en,kk=multilingual_ctc,*=base` (OpenAI's Whisper `base` detecting languages).

Kazakh speech comes from espeak-ng's `kk` voice. Whisper `base` does not recognise it as Kazakh (it says Thai or
Latin; ADR 49), so the Kazakh request names its language; unnamed, it lands on `*`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.engines.registry import find_model
from app.settings import SettingsError, load_settings
from app.transcription.routing import AutoRouter, auto_router
from tests.server import AUDIO, ServerProcess, tiny_server
from tests.system.test_openai_api import assert_openai_error

TIMEOUT = 180.0
ROUTE = "/v1/audio/transcriptions"


@pytest.fixture(scope="module")
def server(tiny_multilingual_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "MODEL": "multilingual_ctc",
        "ALLOWED_MODELS": "multilingual_ctc,tiny.en",
        "MODELS_DIR": str(tiny_multilingual_models_dir),
    }
    with tiny_server(tmp_path_factory.mktemp("multilingual-server"), **env) as server:
        yield server


def transcribe(server: ServerProcess, path: Path, **form: str) -> httpx.Response:
    files = {"file": (path.name, path.read_bytes(), "audio/wav")}
    return httpx.post(f"{server.url}{ROUTE}", files=files, data=form, timeout=TIMEOUT)


def test_kazakh_is_transcribed_with_word_timestamps(
    server: ServerProcess, central_asian_speech: dict[str, Path]
) -> None:
    form = {"language": "kk", "response_format": "verbose_json", "timestamp_granularities[]": "word"}
    response = transcribe(server, central_asian_speech["kk"], **form)
    assert response.status_code == 200, response.text
    assert response.headers["x-model"] == "multilingual_ctc"
    body = response.json()
    assert body["language"] == "kazakh"
    words = body["words"]
    assert words and all(0 <= w["start"] <= w["end"] <= body["duration"] for w in words)
    assert all(a["start"] <= b["start"] for a, b in itertools.pairwise(words))
    assert "".join(w["word"] for w in words).strip() == body["text"]


@pytest.mark.parametrize(("code", "name"), [("ky", "kyrgyz"), ("uz", "uzbek"), ("ru", "russian")])
def test_its_other_languages(
    server: ServerProcess, central_asian_speech: dict[str, Path], code: str, name: str
) -> None:
    speech = central_asian_speech.get(code, AUDIO / "beckett.wav")
    response = transcribe(server, speech, language=code, response_format="verbose_json")
    assert response.status_code == 200, response.text
    assert response.json()["language"] == name and response.headers["x-model"] == "multilingual_ctc"


def test_a_language_it_cannot_do_is_a_400(server: ServerProcess) -> None:
    error = assert_openai_error(transcribe(server, AUDIO / "beckett.wav", language="de"), 400, param="language")
    assert error["message"] == (
        "Model 'multilingual_ctc' only supports English, Kazakh, Kyrgyz, Russian, Uzbek; got language='de'"
    )
    # Kyrgyz is a language here only because a GigaAM model knows it: Whisper does not
    error = assert_openai_error(
        transcribe(server, AUDIO / "beckett.wav", language="ky", model="tiny.en"), 400, param="language"
    )
    assert "only supports English" in str(error["message"])


def test_models_and_health_list_it(server: ServerProcess) -> None:
    models = {m["id"]: m for m in httpx.get(f"{server.url}/v1/models", timeout=30).json()["data"]}
    entry = models["multilingual_ctc"]
    assert entry["owned_by"] == "salute-developers" and entry["family"] == "gigaam" and entry["default"]
    assert entry["languages"] == ["en", "kk", "ky", "ru", "uz"]
    health = httpx.get(f"{server.url}/health", timeout=30)
    assert health.status_code == 200 and "multilingual_ctc" in health.text
    openapi = httpx.get(f"{server.url}/docs/openapi.json", timeout=30).text
    assert '"multilingual_ctc"' in openapi and '"ky"' in openapi


# --- MODEL=auto ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auto_server(
    tiny_multilingual_models_dir: Path, whisper_base_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("auto-multilingual")
    models = tmp / "models"
    models.mkdir()
    (models / "base").symlink_to(whisper_base_models_dir / "base")
    (models / "multilingual_ctc").symlink_to(tiny_multilingual_models_dir / "multilingual_ctc")
    env = {
        "MODEL": "auto",
        "ALLOWED_MODELS": "tiny.en,base,multilingual_ctc",
        "AUTO_ROUTES": "en=tiny.en,kk=multilingual_ctc,*=base",
    }
    with tiny_server(tmp, **env) as server:  # its MODELS_DIR is tmp/models
        yield server


def test_auto_sends_kazakh_and_english_to_their_models(
    auto_server: ServerProcess, central_asian_speech: dict[str, Path]
) -> None:
    kazakh = transcribe(auto_server, central_asian_speech["kk"], language="kk", response_format="verbose_json")
    assert kazakh.status_code == 200, kazakh.text
    assert kazakh.headers["x-model"] == "multilingual_ctc" and kazakh.json()["language"] == "kazakh"
    english = transcribe(auto_server, AUDIO / "beckett.wav")  # detected
    assert english.status_code == 200, english.text
    assert english.headers["x-model"] == "tiny.en" and "fail better" in english.json()["text"].lower()
    # espeak's Kazakh without a language: Whisper base does not hear Kazakh in it, so it goes to another route
    unnamed = transcribe(auto_server, central_asian_speech["kk"], response_format="verbose_json")
    assert unnamed.status_code == 200, unnamed.text
    assert unnamed.headers["x-model"] in ("base", "tiny.en") and unnamed.json()["language"] != "kazakh"


def test_routes_to_the_multilingual_models_are_checked_at_start_up() -> None:
    def router(routes: str) -> AutoRouter | None:
        env = {"MODEL": "auto", "ALLOWED_MODELS": "base,multilingual_ctc,multilingual_large_ctc", "AUTO_ROUTES": routes}
        return auto_router(load_settings(env, None).engines, lambda name: find_model(name, Path("/nonexistent")).info)

    table = router("ru=multilingual_large_ctc,kk=multilingual_large_ctc,ky=multilingual_ctc,uz=multilingual_ctc,*=base")
    assert table is not None
    assert [table.model_for(c) for c in ("kk", "ky", "uz", "ru", "de")] == [
        "multilingual_large_ctc",
        "multilingual_ctc",
        "multilingual_ctc",
        "multilingual_large_ctc",
        "base",
    ]
    with pytest.raises(SettingsError, match="'multilingual_ctc' cannot transcribe 'de'"):
        router("de=multilingual_ctc,*=base")
    with pytest.raises(SettingsError, match="needs a multilingual model"):
        router("*=multilingual_ctc")
    with pytest.raises(SettingsError, match="'base' cannot transcribe 'ky'"):
        router("ky=base,*=base")
