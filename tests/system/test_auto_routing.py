"""MODEL=auto (issue 12): each request goes to the model of its language, detected by the smallest allowed
multilingual Whisper when the request names none; `x-model` says which model transcribed it.

One server for the module: MODEL=auto, ALLOWED_MODELS=auto,tiny.en,base, AUTO_ROUTES=en=tiny.en,*=base, with OpenAI's
Whisper `base` assembled from its dev-only packages (`whisper_base_models_dir`). German speech comes from espeak-ng.
"Without detection" is proven by the detection counter (`stt_language_detections_total`) and the log line's fields.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from app.languages import LANGUAGES
from app.settings import SettingsError, load_settings
from tests.realtime_client import pcm24k, stream, ws_url
from tests.server import AUDIO, ROOT, ServerProcess, tiny_server
from tests.system.test_openai_api import assert_openai_error
from tests.whisper_base import words_of

TIMEOUT = 180.0
ROUTES = {"en": "tiny.en", "*": "base"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, whisper_base_models_dir: Path) -> Iterator[ServerProcess]:
    env = {
        "MODEL": "auto",
        "ALLOWED_MODELS": "auto,tiny.en,base",  # clients may send `auto` (AUTO_ROUTES enables it either way)
        "AUTO_ROUTES": "en=tiny.en,*=base",
        "MODELS_DIR": str(whisper_base_models_dir),
        "ALLOW_PRIVATE_URLS": "true",
    }
    with tiny_server(tmp_path_factory.mktemp("auto-server"), **env) as server:
        yield server


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=TIMEOUT)


def post(server: ServerProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", timeout=TIMEOUT, **kwargs)


def upload(folder: Path, name: str, field: str = "file") -> dict[str, tuple[str, bytes, str]]:
    return {field: (name, (folder / name).read_bytes(), "audio/wav")}


def detections(server: ServerProcess) -> dict[str, float]:
    """stt_language_detections_total by language."""
    text = httpx.get(f"{server.url}/metrics").text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "stt_language_detections_total":
                counts[sample.labels["language"]] = sample.value
    return counts


ROUTE = "/v1/audio/transcriptions"


def request_fields(line: str) -> dict[str, Any]:
    """A `request` log line's key=value fields (the console renderer)."""
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def next_request(server: ServerProcess, seen: int) -> dict[str, Any]:
    """The fields of the transcription request line after the `seen` ones (written after the response went out)."""
    return request_fields(server.next_request_line(ROUTE, seen))


# --- routing by detected and by given language ---------------------------------------------------------------------


def test_english_speech_goes_to_tiny_en(client: OpenAI, server: ServerProcess) -> None:
    """With `whisper-1` (what OpenAI's SDK sends) and with no model at all (the SDK always sends one: plain HTTP)."""
    before = detections(server).get("en", 0.0)
    seen = len(server.request_lines(ROUTE))
    with open(AUDIO / "beckett.wav", "rb") as f:
        raw = client.audio.transcriptions.with_raw_response.create(
            file=f, model="whisper-1", response_format="verbose_json"
        )
    assert raw.headers["x-model"] == "tiny.en"
    result = raw.parse()
    assert result.language == "english" and "fail better" in result.text.lower()
    line = next_request(server, seen)
    assert line["model"] == "tiny.en" and line["detected_language"] == "en" and float(line["detection_seconds"]) > 0
    no_model = post(server, "/v1/audio/transcriptions", files=upload(AUDIO, "beckett.wav"))
    assert no_model.status_code == 200, no_model.text
    assert no_model.headers["x-model"] == "tiny.en" and "fail better" in no_model.json()["text"].lower()
    assert detections(server)["en"] == before + 2


def test_german_speech_goes_to_base(client: OpenAI, server: ServerProcess, speech_dir: Path) -> None:
    before = detections(server).get("de", 0.0)
    with open(speech_dir / "german.wav", "rb") as f:
        raw = client.audio.transcriptions.with_raw_response.create(
            file=f, model="whisper-1", response_format="verbose_json"
        )
    assert raw.headers["x-model"] == "base"
    result = raw.parse()
    assert result.language == "german"
    assert {"berlin", "tasse"} <= words_of(result.text), result.text
    assert detections(server)["de"] == before + 1


def test_languages_limit_detection_to_them(server: ServerProcess, speech_dir: Path) -> None:
    """OpenAI's `languages[]` under auto: German speech said to be English or French is detected as one of those
    (and routed by it); one language in the list is the language, routed without detection."""
    data = {"languages[]": ["en", "fr"], "response_format": "verbose_json"}
    limited = post(server, ROUTE, files=upload(speech_dir, "german.wav"), data=data)
    assert limited.status_code == 200, limited.text
    assert limited.json()["language"] in ("english", "french")
    assert limited.headers["x-model"] == ("tiny.en" if limited.json()["language"] == "english" else "base")
    seen = len(server.request_lines(ROUTE))
    one = post(server, ROUTE, files=upload(speech_dir, "german.wav"), data={"languages[]": "de"})
    assert one.status_code == 200 and one.headers["x-model"] == "base"
    assert "detection_seconds" not in next_request(server, seen)


def test_given_language_is_routed_without_detection(server: ServerProcess, speech_dir: Path) -> None:
    before = detections(server)
    seen = len(server.request_lines(ROUTE))
    english = post(server, "/v1/audio/transcriptions", files=upload(speech_dir, "beckett.wav"), data={"language": "en"})
    assert english.status_code == 200, english.text
    assert english.headers["x-model"] == "tiny.en" and "fail better" in english.json()["text"].lower()
    assert "detection_seconds" not in next_request(server, seen)
    german = post(
        server,
        "/v1/audio/transcriptions",
        files=upload(speech_dir, "german.wav"),
        data={"language": "de", "model": "auto", "response_format": "verbose_json"},
    )
    assert german.status_code == 200, german.text
    assert german.headers["x-model"] == "base" and german.json()["language"] == "german"
    assert "detection_seconds" not in next_request(server, seen + 1)
    assert detections(server) == before


def test_a_stream_names_its_model_before_the_first_event(server: ServerProcess, speech_dir: Path) -> None:
    form = {"stream": "true", "response_format": "json"}
    with httpx.stream(
        "POST",
        f"{server.url}/v1/audio/transcriptions",
        files=upload(speech_dir, "german.wav"),
        data=form,
        timeout=TIMEOUT,
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-model"] == "base"
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    done = json.loads(events[-2].removeprefix("data: "))
    assert done["type"] == "transcript.text.done" and "berlin" in words_of(done["text"])


def test_a_fixed_model_is_named_too(server: ServerProcess, speech_dir: Path) -> None:
    response = post(server, "/v1/audio/transcriptions", files=upload(speech_dir, "beckett.wav"), data={"model": "base"})
    assert response.status_code == 200, response.text
    assert response.headers["x-model"] == "base"


def test_a_language_without_a_route_is_refused(tmp_path: Path, whisper_base_models_dir: Path) -> None:
    """Routes without `*`: a given language nobody serves is a 400 naming `language`, before any audio is read."""
    env = {
        "MODEL": "auto",
        "ALLOWED_MODELS": "tiny.en,base",
        "AUTO_ROUTES": "en=tiny.en,de=base",
        "MODELS_DIR": str(whisper_base_models_dir),
        "LOAD_MODEL_ON_STARTUP": "false",
    }
    with tiny_server(tmp_path, **env) as server:
        response = post(server, "/v1/audio/transcriptions", files=upload(AUDIO, "beckett.wav"), data={"language": "fr"})
        error = assert_openai_error(response, 400, param="language")
        assert error["code"] == "unsupported_language" and "French" in str(error["message"])
        models = {m["id"]: m for m in httpx.get(f"{server.url}/v1/models").json()["data"]}
        assert models["auto"]["languages"] == ["de", "en"]


# --- translations --------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_auto_translation_uses_a_model_that_translates(client: OpenAI, speech_dir: Path) -> None:
    with open(speech_dir / "german.wav", "rb") as f:
        raw = client.audio.translations.with_raw_response.create(
            file=f, model="whisper-1", response_format="verbose_json"
        )
    assert raw.headers["x-model"] == "base"
    result = raw.parse()
    assert result.language == "english"
    # base's translation varies run to run (its fallback samples: "train station" or "Berlin"); these words stay
    assert {"coffee", "milk"} <= words_of(result.text), result.text


# --- Reflector's routes ----------------------------------------------------------------------------------------------


def test_reflector_upload_routes_each_file(server: ServerProcess, speech_dir: Path) -> None:
    files = [
        ("files", ("german.wav", (speech_dir / "german.wav").read_bytes(), "audio/wav")),
        ("files", ("beckett.wav", (speech_dir / "beckett.wav").read_bytes(), "audio/wav")),
    ]
    response = post(server, "/v1/audio/transcriptions", files=files, data={"model": "whisper-1"})
    assert response.status_code == 200, response.text
    assert response.headers["x-model"] == "base,tiny.en"
    german, english = response.json()["results"]
    assert {"zug", "berlin"} <= words_of(german["text"]), german["text"]
    assert "fail better" in english["text"].lower()


def test_reflector_from_url_detects_an_omitted_language(server: ServerProcess, speech_url: str) -> None:
    body = {"audio_file_url": f"{speech_url}/german.wav", "model": "nvidia/parakeet-tdt-0.6b-v2"}
    response = post(server, "/v1/audio/transcriptions-from-url", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-model"] == "base"
    assert {"zug", "berlin"} <= words_of(response.json()["text"]), response.text
    assert server.temp_entries() == []


# --- what the server says about auto ---------------------------------------------------------------------------------


def test_models_lists_auto_with_its_routes(server: ServerProcess) -> None:
    models = {m["id"]: m for m in httpx.get(f"{server.url}/v1/models").json()["data"]}
    auto = models["auto"]
    assert auto["routes"] == ROUTES and auto["detector"] == "base" and auto["default"] is True
    assert auto["languages"] is None and auto["translation"] is True
    assert models["tiny.en"]["default"] is False
    # OpenAI's names mean MODEL, here auto
    assert models["gpt-4o-transcribe-diarize"]["alias_of"] == "auto" and models["whisper-1"]["routes"] == ROUTES


def test_health_says_which_routed_models_are_ready(server: ServerProcess, speech_dir: Path) -> None:
    post(server, "/v1/audio/transcriptions", files=upload(speech_dir, "beckett.wav"))  # leaves tiny.en resident
    health = httpx.get(f"{server.url}/health").json()
    assert health["model"] == "auto"
    assert health["auto"]["routes"] == ROUTES and health["auto"]["detector"] == "base"
    assert health["auto"]["ready"] == {"tiny.en": True, "base": True}  # base as the detector (kind `language`)
    assert {"name": "base", "kind": "language"} in health["resident"]


# --- settings ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUTO_ROUTES": "en"}, "AUTO_ROUTES: expected language=model"),
        ({"AUTO_ROUTES": "english=tiny.en"}, "AUTO_ROUTES: 'english' is not a language code"),
        ({"AUTO_ROUTES": "en=base.en"}, "AUTO_ROUTES: model 'base.en' (for en) must be one of ALLOWED_MODELS"),
        ({"AUTO_ROUTES": "en=tiny.en,EN=base"}, "AUTO_ROUTES names 'en' twice"),
        ({"MODEL": "auto"}, "MODEL=auto needs AUTO_ROUTES"),
        ({"ALLOWED_MODELS": "tiny.en,auto"}, "ALLOWED_MODELS names 'auto': set AUTO_ROUTES"),
        ({"ALLOWED_MODELS": "auto", "AUTO_ROUTES": "en=tiny.en"}, "ALLOWED_MODELS must name at least one model"),
        ({"AUTO_ROUTES": "en=tiny.en", "AUTO_DETECT_MODEL": "small"}, "AUTO_DETECT_MODEL='small' must be one of"),
    ],
)
def test_a_bad_route_setting_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings({"MODEL": "tiny.en", "ALLOWED_MODELS": "tiny.en,base", **env}, None)


def test_allowed_models_may_name_auto() -> None:
    """ALLOWED_MODELS is the names clients may send, and they may send `auto` (AUTO_ROUTES decides its routes)."""
    engines = load_settings(
        {"MODEL": "auto", "ALLOWED_MODELS": "auto,tiny.en,base", "AUTO_ROUTES": "en=tiny.en,*=base"}, None
    ).engines
    assert engines.allowed_models == ("tiny.en", "base")
    assert engines.routes() == {"en": "tiny.en", "*": "base"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"AUTO_ROUTES": "de=tiny.en", "ALLOWED_MODELS": "tiny.en,base"},
            "AUTO_ROUTES: 'tiny.en' cannot transcribe 'de': it knows English",
        ),
        ({"AUTO_ROUTES": "*=tiny.en", "ALLOWED_MODELS": "tiny.en,base"}, "AUTO_ROUTES: '\\*' .* needs a multilingual"),
        ({"AUTO_ROUTES": "en=tiny.en", "ALLOWED_MODELS": "tiny.en"}, "AUTO_ROUTES needs a multilingual Whisper"),
        (
            {"AUTO_ROUTES": "ru=v3_ctc,*=base", "ALLOWED_MODELS": "v3_ctc,base", "AUTO_DETECT_MODEL": "v3_ctc"},
            "AUTO_DETECT_MODEL='v3_ctc' must be a multilingual Whisper",
        ),
    ],
)
def test_the_server_refuses_to_start_with_unusable_routes(tmp_path: Path, env: dict[str, str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MODEL": "auto", "MODELS_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Invalid configuration: "), result.stderr
    assert re.search(message, lines[0]), lines[0]


def test_the_smallest_allowed_multilingual_whisper_detects() -> None:
    from app.engines.registry import find_model
    from app.transcription.routing import auto_router

    engines = load_settings(
        {"MODEL": "auto", "ALLOWED_MODELS": "small,tiny.en,base,v3_ctc", "AUTO_ROUTES": "ru=v3_ctc,en=tiny.en,*=small"},
        None,
    ).engines
    router = auto_router(engines, lambda name: find_model(name, Path("/nonexistent")).info)
    assert router is not None and router.detector == "base"
    assert router.model_for("ru") == "v3_ctc" and router.model_for("de") == "small"
    assert router.translator_for("ru") == "small" and router.translator_for("en") == "small"
    assert router.models == ("v3_ctc", "tiny.en", "small", "base")


@given(
    st.dictionaries(
        st.sampled_from([*sorted(LANGUAGES), "*"]), st.sampled_from(["tiny.en", "base", "v3_ctc"]), max_size=6
    ),
    st.sampled_from([",", ", ", " , "]),
)
def test_routes_read_back_as_written(routes: dict[str, str], separator: str) -> None:
    """Any table of known languages and allowed models, written as AUTO_ROUTES (any case, spaces around commas),
    reads back as the same table in the same order."""
    text = separator.join(f"{language.upper()}={model}" for language, model in routes.items())
    env = {"MODEL": "tiny.en", "ALLOWED_MODELS": "tiny.en,base,v3_ctc", "AUTO_ROUTES": text}
    assert list(load_settings(env, None).engines.routes().items()) == list(routes.items())


# --- live dictation under MODEL=auto -------------------------------------------------------------------------------


def test_live_dictation_without_a_language_uses_the_catch_all_route(server: ServerProcess) -> None:
    """No file to detect from: a live session with no language runs on `*`'s multilingual model; with `en` given,
    on English's route."""

    async def transcribe(language: str | None) -> list[dict[str, Any]]:
        transcription: dict[str, Any] = {"model": "whisper-1"} | ({"language": language} if language else {})
        update = {
            "type": "session.update",
            "session": {"type": "transcription", "audio": {"input": {"transcription": transcription}}},
        }
        # the trailing silence ends the last utterance (else it is never committed, and never completes)
        pcm = pcm24k(AUDIO / "beckett.wav", silence_after=1.0)
        received = await stream(ws_url(server.url), pcm, session=update["session"])
        return [r.event for r in received]

    for language in (None, "en"):
        seen = server.request_lines("/v1/realtime")
        events = asyncio.run(transcribe(language))
        assert not [e for e in events if e["type"] == "error"], events
        completed = [e["transcript"] for e in events if e["type"].endswith("transcription.completed")]
        assert len(words_of(" ".join(completed)) & {"ever", "tried", "failed", "matter", "fail", "better"}) >= 3
        line = request_fields(server.next_request_line("/v1/realtime", len(seen)))
        assert line["model"] == ("base" if language is None else "tiny.en")
