"""Languages through the real server with OpenAI's multilingual Whisper `base` (assembled for tests from its two
dev-only PyPI data packages, `tests/whisper_base.py`) beside the English-only `tiny.en`.

German speech is synthesised with espeak-ng into a temp dir. Its voice is robotic, so the checks are on words
whose translation or transcription is unambiguous, never on the exact text. One server for the module
(MODEL=base, ALLOWED_MODELS=base,tiny.en); `base` on 2 cores is ~4x slower than tiny.en, so utterances are short.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.server import AUDIO, ServerProcess, tiny_server
from tests.system.test_openai_api import assert_openai_error
from tests.whisper_base import words_of

# Words a translation of GERMAN must carry (those base gets right from espeak's voice with and without word timings;
# "morgen" came back as "tomorrow" or not at all, "Tasse" as "cup" or "a coffee", "mit dem Zug" as "by train" or
# "go" on a loaded machine, where Whisper's temperature fallback samples), and German words it must not (it is
# English, not a transcript).
# words every translation by `base` has (it sometimes drops the proper noun "Berlin": not asserted)
ENGLISH_WORDS = ("coffee", "milk")
GERMAN_ONLY_WORDS = ("morgen", "zug", "kaffee", "milch")
TIMEOUT = 180.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, whisper_base_models_dir: Path) -> Iterator[ServerProcess]:
    env = {
        "MODEL": "base",
        "ALLOWED_MODELS": "base,tiny.en",
        "MODELS_DIR": str(whisper_base_models_dir),
        "ALLOW_PRIVATE_URLS": "true",
    }
    with tiny_server(tmp_path_factory.mktemp("multilingual-server"), **env) as server:
        yield server


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=TIMEOUT)


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def post(server: ServerProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", timeout=TIMEOUT, **kwargs)


def upload(speech_dir: Path, name: str, field: str = "file") -> dict[str, tuple[str, bytes, str]]:
    return {field: (name, (speech_dir / name).read_bytes(), "audio/wav")}


# --- the model ----------------------------------------------------------------------------------------------------


def test_base_is_served_from_the_assembled_folder(server: ServerProcess, whisper_base_models_dir: Path) -> None:
    models = {m["id"]: m for m in httpx.get(f"{server.url}/v1/models").json()["data"]}
    assert models["base"]["languages"] is None and models["base"]["translation"] is True
    assert models["tiny.en"]["languages"] == ["en"] and models["tiny.en"]["translation"] is False
    assert sorted(p.name for p in (whisper_base_models_dir / "base").iterdir()) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]
    assert "fetching model files" not in server.log()


# --- /v1/audio/translations ---------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK marks translations.create deprecated
def test_german_speech_is_translated_into_english(client: OpenAI, speech_dir: Path) -> None:
    with open(speech_dir / "german.wav", "rb") as f:
        result = client.audio.translations.create(file=f, model="whisper-1")
    words = words_of(result.text)
    assert set(ENGLISH_WORDS) <= words, result.text
    assert not words & set(GERMAN_ONLY_WORDS), result.text


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translation_verbose_json_reports_english_output(client: OpenAI, speech_dir: Path) -> None:
    """OpenAI's TranslationVerbose: `language` is the output's, "always english"; the segments are English too."""
    with open(speech_dir / "german.wav", "rb") as f:
        result = client.audio.translations.create(file=f, model="base", response_format="verbose_json")
    assert result.language == "english"
    assert set(ENGLISH_WORDS) <= words_of(result.text), result.text
    assert result.segments and " ".join(s.text for s in result.segments).split() == result.text.split()
    assert result.duration == pytest.approx(wav_seconds(speech_dir / "german.wav"), abs=0.05)


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_english_only_model_cannot_translate(client: OpenAI, speech_dir: Path) -> None:
    with open(speech_dir / "german.wav", "rb") as f, pytest.raises(openai.BadRequestError) as raised:
        client.audio.translations.create(file=f, model="tiny.en")
    error = raised.value.body
    assert isinstance(error, dict) and error["param"] == "model" and error["code"] == "translation_unsupported"
    assert "tiny.en" in raised.value.message


# --- /v1/audio/transcriptions: detected and given languages ---------------------------------------------------------


def test_language_is_detected_as_german(client: OpenAI, speech_dir: Path) -> None:
    with open(speech_dir / "german.wav", "rb") as f:
        result = client.audio.transcriptions.create(file=f, model="base", response_format="verbose_json")
    assert result.language == "german"
    assert {"berlin", "tasse"} <= words_of(result.text), result.text


def test_language_is_detected_as_english(client: OpenAI) -> None:
    with open(AUDIO / "beckett.wav", "rb") as f:
        result = client.audio.transcriptions.create(file=f, model="whisper-1", response_format="verbose_json")
    assert result.language == "english"
    assert "fail better" in result.text.lower()


def test_given_language_is_transcribed_in_that_language(client: OpenAI, speech_dir: Path) -> None:
    with open(speech_dir / "german.wav", "rb") as f:
        result = client.audio.transcriptions.create(file=f, model="base", language="de", response_format="verbose_json")
    assert result.language == "german"
    words = words_of(result.text)
    assert {"zug", "berlin", "tasse"} <= words, result.text
    assert not words & {"train", "coffee", "tomorrow"}, result.text


def test_language_the_model_cannot_do(server: ServerProcess, speech_dir: Path) -> None:
    form = {"model": "tiny.en", "language": "fr"}
    response = post(server, "/v1/audio/transcriptions", files=upload(speech_dir, "german.wav"), data=form)
    error = assert_openai_error(response, 400, param="language")
    assert error["code"] == "unsupported_language" and "only supports English" in str(error["message"])


@pytest.mark.parametrize("language", ["zz", "xyz"])
def test_language_no_model_knows(server: ServerProcess, speech_dir: Path, speech_url: str, language: str) -> None:
    """A well-formed code outside Whisper's language table is refused before any audio is decoded, on every route."""
    upload_response = post(
        server, "/v1/audio/transcriptions", files=upload(speech_dir, "german.wav"), data={"language": language}
    )
    body = {"audio_file_url": f"{speech_url}/german.wav", "language": language}
    url_response = post(server, "/v1/audio/transcriptions-from-url", json=body)
    for response in (upload_response, url_response):
        error = assert_openai_error(response, 400, param="language")
        assert error["code"] == "unsupported_language" and f"'{language}'" in str(error["message"])


# --- Reflector's routes --------------------------------------------------------------------------------------------


def test_reflector_upload_with_german(server: ServerProcess, speech_dir: Path) -> None:
    response = post(
        server, "/v1/audio/transcriptions", files=upload(speech_dir, "german.wav", "files"), data={"language": "de"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["filename"] == "german.wav"
    assert {"zug", "berlin"} <= words_of(result["text"]), result["text"]
    assert result["text"] == "".join(w["word"] for w in result["words"]).strip()


def test_reflector_from_url_with_german(server: ServerProcess, speech_url: str) -> None:
    body = {"audio_file_url": f"{speech_url}/german.wav", "language": "de"}
    response = post(server, "/v1/audio/transcriptions-from-url", json=body)
    assert response.status_code == 200, response.text
    assert {"zug", "berlin"} <= words_of(response.json()["text"]), response.text


def test_reflector_routes_refuse_german_for_an_english_only_model(
    server: ServerProcess, speech_dir: Path, speech_url: str
) -> None:
    form = {"language": "de", "model": "tiny.en"}
    files = upload(speech_dir, "german.wav", "files")
    upload_response = post(server, "/v1/audio/transcriptions", files=files, data=form)
    url_response = post(
        server, "/v1/audio/transcriptions-from-url", json={"audio_file_url": f"{speech_url}/german.wav", **form}
    )
    for response in (upload_response, url_response):
        error = assert_openai_error(response, 400, param="language")
        assert error["code"] == "unsupported_language" and "only supports English" in str(error["message"])
    assert server.temp_entries() == []
