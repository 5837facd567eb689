"""The HTTP layer in process (Litestar's test client, no server subprocess, no model loaded): request parsing of
both dialects and the mapping of every domain error to status, OpenAI error shape, param and headers."""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from app.api.errors import describe
from app.errors import (
    AppError,
    InputTooLarge,
    InvalidInput,
    ModelUnavailable,
    QueueFull,
    SourceFailed,
    SourceNotFound,
    SourceTimeout,
)
from app.model_names import OPENAI_TRANSCRIPTION_MODELS, means_default_model
from app.server import create_app
from app.settings import load_settings
from tests.audio_factory import silence

KEY = "in-process-key"
NOT_AUDIO = {"file": ("a.wav", b"not audio at all")}
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:  # type: ignore[type-arg]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the app's temp root, emptied at start-up
    env = {
        "MODEL": "tiny.en",
        "ALLOWED_MODELS": "tiny.en",
        "MODELS_DIR": str(tmp_path / "models"),
        "LOAD_MODEL_ON_STARTUP": "false",
        "API_KEY": KEY,
    }
    with TestClient(create_app(load_settings(env, dotenv=None))) as test_client:
        yield test_client


def error_of(response, status: int, param: str | None = None) -> dict[str, object]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert error["type"] == ("invalid_request_error" if status < 500 else "server_error")
    return dict(error)


# --- the error table ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("x"), 400),
        (SourceNotFound("x"), 404),
        (InputTooLarge("x"), 413),
        (SourceFailed("x"), 502),
        (SourceTimeout("x"), 504),
        (ModelUnavailable("x"), 503),
        (QueueFull("x", retry_after_seconds=7), 503),
        (AppError("x"), 500),
    ],
)
def test_each_domain_error_has_one_status(error: AppError, status: int) -> None:
    assert describe(error).status == status


def test_the_audio_is_the_requests_audio_field_and_retry_after_a_header() -> None:
    about_audio = InvalidInput("bad audio", about="audio", code="invalid_audio")
    assert describe(about_audio).body.param == "file"
    assert describe(about_audio, audio_field="audio_file_url").body.param == "audio_file_url"
    assert describe(InvalidInput("x", about="language")).body.param == "language"
    assert describe(QueueFull("busy", retry_after_seconds=7)).headers == {"Retry-After": "7"}


# --- OpenAI's form -----------------------------------------------------------------------------------------------


def test_auth_is_required_and_challenged(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"RIFF")})
    error_of(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    wrong = client.post("/v1/audio/transcriptions", headers={"Authorization": "Bearer nope"})
    assert error_of(wrong, 401)["code"] == "invalid_api_key"


def test_not_multipart(client: TestClient) -> None:  # type: ignore[type-arg]
    error_of(client.post("/v1/audio/transcriptions", headers=AUTH, content=b"{}"), 400)


@pytest.mark.parametrize("field", ["file", "files[]"])
def test_audio_sent_without_a_filename_is_still_the_audio(client: TestClient, field: str) -> None:  # type: ignore[type-arg]
    """RFC 7578 makes the filename optional: a `file` part without one is the upload (here: not audio), not a
    missing file or a text field that is too long."""
    res = client.post("/v1/audio/transcriptions", headers=AUTH, files={field: (None, b"\x00not audio" * 10_000)})
    assert "decode" in str(error_of(res, 400, "file")["message"])


@pytest.mark.parametrize(
    "model", [*OPENAI_TRANSCRIPTION_MODELS, "gpt-4o-mini-transcribe-2025-12-15", "gpt-transcribe-2026-03-01", "default"]
)
def test_openais_model_names_mean_model(client: TestClient, model: str) -> None:  # type: ignore[type-arg]
    """Past the model check (it is MODEL): what is wrong is the audio."""
    response = client.post("/v1/audio/transcriptions", headers=AUTH, data={"model": model}, files=NOT_AUDIO)
    error_of(response, 400, "file")


@pytest.mark.parametrize(
    "model", ["whisper-2", "gpt-4o-transcribe-latest", "gpt-transcribe-2026-03", "GPT-4O-TRANSCRIBE"]
)
def test_other_names_are_not_aliases(client: TestClient, model: str) -> None:  # type: ignore[type-arg]
    response = client.post("/v1/audio/transcriptions", headers=AUTH, data={"model": model}, files=NOT_AUDIO)
    assert error_of(response, 400, "model")["code"] == "model_not_found"


@given(st.sampled_from(OPENAI_TRANSCRIPTION_MODELS), st.dates(min_value=date(2000, 1, 1)), st.text(max_size=12))
def test_a_dated_snapshot_means_model_and_nothing_else_does(name: str, day: date, other: str) -> None:
    assert means_default_model(f"{name}-{day.isoformat()}")
    assert means_default_model(other) == (other in ("", "default", *OPENAI_TRANSCRIPTION_MODELS))


@pytest.mark.parametrize(
    ("data", "files", "param"),
    [
        ({}, {"other": ("x.txt", b"x")}, "file"),
        ({"response_format": "xml"}, {"file": ("a.wav", b"RIFF")}, "response_format"),
        ({"timestamp_granularities[]": "char"}, {"file": ("a.wav", b"RIFF")}, "timestamp_granularities"),
        ({"temperature": "3"}, {"file": ("a.wav", b"RIFF")}, "temperature"),
        ({"stream": "maybe"}, {"file": ("a.wav", b"RIFF")}, "stream"),
        ({"model": "no-such-model"}, {"file": ("a.wav", b"RIFF")}, "model"),
        ({"model": "auto"}, {"file": ("a.wav", b"RIFF")}, "model"),  # no AUTO_ROUTES here
        ({"keywords[]": "x" * 101}, {"file": ("a.wav", b"RIFF")}, "keywords"),
        ({"language": "fr"}, {"file": ("a.wav", b"RIFF")}, "language"),
        ({"language": "english!"}, {"file": ("a.wav", b"RIFF")}, "language"),
        ({}, {"file": ("a.wav", b"not audio at all")}, "file"),
        ({}, {"file": ("a.wav", b"")}, "file"),
    ],
)
def test_openai_form_errors_name_their_parameter(
    client: TestClient,  # type: ignore[type-arg]
    data: dict[str, str],
    files: dict[str, tuple[str, bytes]],
    param: str,
) -> None:
    error_of(client.post("/v1/audio/transcriptions", headers=AUTH, data=data, files=files), 400, param)


def test_translation_needs_a_model_that_translates(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.post("/v1/audio/translations", headers=AUTH, files={"file": ("a.wav", b"RIFF")})
    assert error_of(response, 400, "model")["code"] == "translation_unsupported"


def test_models_and_health_load_nothing(client: TestClient) -> None:  # type: ignore[type-arg]
    models = client.get("/v1/models", headers=AUTH).json()["data"]
    assert [(m["id"], m["state"], m["languages"]) for m in models if "alias_of" not in m] == [
        ("tiny.en", "unloaded", ["en"])
    ]
    aliases = {m["id"]: m["alias_of"] for m in models if "alias_of" in m}
    assert aliases == dict.fromkeys(OPENAI_TRANSCRIPTION_MODELS, "tiny.en")
    health = client.get("/health").json()
    assert health["loaded"] is False and health["resident"] == [] and health["queue"]["admitted"] == 0
    assert health["auto"] is None


# --- Reflector's forms and routes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "files", "param"),
    [
        ({}, [("file", ("a.wav", b"RIFF")), ("files", ("b.wav", b"RIFF"))], "files"),
        ({"batch": "true"}, [], "files"),
        ({"batch": "true"}, [("file", ("a.wav", b"RIFF"))], "batch"),
        ({"batch": "maybe"}, [("files", ("a.wav", b"RIFF"))], "batch"),
        ({}, [("files", ("a.wav", b"not audio"))], "file"),
    ],
)
def test_reflector_upload_errors(
    client: TestClient,  # type: ignore[type-arg]
    data: dict[str, str],
    files: list[tuple[str, tuple[str, bytes]]],
    param: str,
) -> None:
    response = client.post("/v1/audio/transcriptions", headers=AUTH, data=data, files=files or {"x": ("", b"")})
    error_of(response, 400, param)


def test_from_url_errors_name_audio_file_url(client: TestClient) -> None:  # type: ignore[type-arg]
    path = "/v1/audio/transcriptions-from-url"
    error_of(client.post(path, headers=AUTH), 400, "audio_file_url")
    error_of(client.post(path, headers=AUTH, json={"audio_file_url": " "}), 400, "audio_file_url")
    error_of(
        client.post(path, headers=AUTH, json={"audio_file_url": "x", "timestamp_offset": "a"}), 400, "timestamp_offset"
    )
    error_of(client.post(path, headers=AUTH, content=b"{not json"), 400)
    refused = client.post(path, headers=AUTH, json={"audio_file_url": "http://127.0.0.1/a.wav"})
    assert error_of(refused, 400, "audio_file_url")["code"] == "ssrf_refused"
    error_of(client.post(path, headers=AUTH, json={"audio_file_url": "ftp://x/a.wav"}), 400, "audio_file_url")


def test_diarize_parameters(client: TestClient) -> None:  # type: ignore[type-arg]
    missing = error_of(client.post("/diarize", headers=AUTH), 400, "audio_file_url")
    assert missing["message"] == "Missing required parameter: 'audio_file_url'"
    error_of(client.post("/diarize", headers=AUTH, params={"audio_file_url": "ftp://x/a.wav"}), 400, "audio_file_url")
    for bad in ("x", "soon", "nan", "inf"):
        url = "http://example.com/a.wav"
        response = client.post("/diarize", headers=AUTH, params={"audio_file_url": url, "timestamp": bad})
        assert url not in str(error_of(response, 400, "timestamp")["message"])  # the request's URL is not repeated


def test_translate_parameters(client: TestClient) -> None:  # type: ignore[type-arg]
    error_of(
        client.post("/translate", headers=AUTH, params={"source_language": "en", "target_language": "ru"}), 400, "text"
    )
    error_of(
        client.post("/translate", headers=AUTH, params={"text": "Hi", "target_language": "ru"}), 400, "source_language"
    )
    bad_code = client.post(
        "/translate", headers=AUTH, params={"text": "Hi", "source_language": "english", "target_language": "ru"}
    )
    error_of(bad_code, 400, "source_language")
    same = client.post(
        "/translate", headers=AUTH, json={"text": "Hi", "source_language": "EN", "target_language": "en"}
    )
    assert same.status_code == 200 and same.json() == {"text": {"en": "Hi"}}


# --- diarized_json: chunking_strategy and known speakers ---------------------------------------------------------


def wav_bytes(seconds: float, tmp_path: Path, name: str = "ref.wav") -> bytes:
    return silence(seconds, tmp_path / name).read_bytes()


def data_url(raw: bytes, mime: str = "audio/wav") -> str:
    return f"data:{mime};base64," + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    "fields",
    [
        [("chunking_strategy", "manual")],
        [("chunking_strategy", '{"type": "client_vad"}')],
        [("chunking_strategy", "[1, 2]")],
        [("chunking_strategy[type]", "server_vad"), ("chunking_strategy[threshold]", "1.5")],
        [("chunking_strategy[type]", "server_vad"), ("chunking_strategy[threshold]", "x")],
        [("chunking_strategy[type]", "server_vad"), ("chunking_strategy[silence_duration_ms]", "-5")],
        [("chunking_strategy[type]", "server_vad"), ("chunking_strategy[prefix_padding_ms]", "nan")],
        [("chunking_strategy[type]", "server_vad"), ("chunking_strategy[speed]", "2")],
        [("chunking_strategy[threshold]", "0.5")],
        [("chunking_strategy", "auto"), ("chunking_strategy[type]", "server_vad")],
        [("chunking_strategy", '{"type": "server_vad", "threshold": true}')],
    ],
)
def test_bad_chunking_strategy_is_a_400_naming_it(
    client: TestClient,  # type: ignore[type-arg]
    tmp_path: Path,
    fields: list[tuple[str, str]],
) -> None:
    files = [("file", ("a.wav", wav_bytes(1, tmp_path)))]
    response = client.post("/v1/audio/transcriptions", headers=AUTH, data=dict(fields), files=files)
    error_of(response, 400, "chunking_strategy")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        # counts that differ
        ([("known_speaker_names[]", "ann"), ("known_speaker_names[]", "bob")], "known_speaker_references"),
        ([("known_speaker_references[]", "REF")], "known_speaker_names"),
        # not a data URL, not base64, not audio, too short, too long
        ([("known_speaker_names[]", "ann"), ("known_speaker_references[]", "http://x/a.wav")], None),
        ([("known_speaker_names[]", "ann"), ("known_speaker_references[]", "data:audio/wav;base64,@@@")], None),
        ([("known_speaker_names[]", "ann"), ("known_speaker_references[]", "NOT_AUDIO")], None),
        ([("known_speaker_names[]", "ann"), ("known_speaker_references[]", "SHORT")], None),
        ([("known_speaker_names[]", "ann"), ("known_speaker_references[]", "LONG")], None),
        # names: too many, repeated, empty; a saved voice that does not exist
        ([("known_speaker_names[]", n) for n in "abcde"], "known_speaker_names"),
        ([("known_speaker_names[]", "ann"), ("known_speaker_names[]", "ann")], "known_speaker_names"),
        ([("known_speaker_names[]", " ")], "known_speaker_names"),
        ([("known_speaker_names[]", "nobody")], "known_speaker_references"),
    ],
)
def test_bad_known_speakers_are_400s(
    client: TestClient,  # type: ignore[type-arg]
    tmp_path: Path,
    fields: list[tuple[str, str]],
    param: str | None,
) -> None:
    stand_ins = {
        "REF": data_url(wav_bytes(3, tmp_path)),
        "NOT_AUDIO": data_url(b"hello, this is text"),
        "SHORT": data_url(wav_bytes(1, tmp_path)),
        "LONG": data_url(wav_bytes(12, tmp_path)),
    }
    data = [(k, stand_ins.get(v, v)) for k, v in fields]
    body = [(k, (None, v.encode())) for k, v in data] + [
        ("response_format", (None, b"diarized_json")),
        ("file", ("a.wav", wav_bytes(1, tmp_path, "a.wav"))),
    ]
    response = client.post("/v1/audio/transcriptions", headers=AUTH, files=body)
    error_of(response, 400, param or "known_speaker_references")


def test_known_speakers_need_diarized_json_and_translations_have_none(
    client: TestClient,  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    audio = {"file": ("a.wav", wav_bytes(1, tmp_path))}
    named = client.post("/v1/audio/transcriptions", headers=AUTH, data={"known_speaker_names[]": "ann"}, files=audio)
    error_of(named, 400, "known_speaker_names")
    translated = client.post(
        "/v1/audio/translations", headers=AUTH, data={"response_format": "diarized_json"}, files=audio
    )
    error_of(translated, 400, "response_format")


def test_a_reference_may_be_an_uploaded_file(client: TestClient, tmp_path: Path) -> None:  # type: ignore[type-arg]
    body = [
        ("known_speaker_names[]", (None, b"ann")),
        ("known_speaker_references[]", ("ann.wav", wav_bytes(1, tmp_path))),  # a file part, not a data URL
        ("response_format", (None, b"diarized_json")),
        ("file", ("a.wav", wav_bytes(1, tmp_path, "a.wav"))),
    ]
    response = client.post("/v1/audio/transcriptions", headers=AUTH, files=body)
    assert "lasts 1.0 s" in error_of(response, 400, "known_speaker_references")["message"]
