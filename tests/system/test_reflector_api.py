"""Reflector's GPU Model API (seed 002), driven the way Reflector drives it, against a real `python -m app`.

Audio comes from a local `http.server` on 127.0.0.1 started here, so the main server runs with
ALLOW_PRIVATE_URLS=true; a second, lighter server keeps the default (false) for the SSRF refusal.
Translation uses a tiny random-weight Marian model built into the server's MODELS_DIR before it starts.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.audio_factory import transcode
from tests.server import AUDIO, ServerProcess, tiny_server
from tests.system.test_openai_api import assert_openai_error
from tools.textmetrics import word_error_rate

KEY = "reflector-secret"
AUTH = {"Authorization": f"Bearer {KEY}"}
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from tools.marian_build import build

    tmp = tmp_path_factory.mktemp("reflector-server")
    build(tmp / "models" / "opus-mt-en-ru")
    env = {"REFLECTOR_GPU_APIKEY": KEY, "ALLOW_PRIVATE_URLS": "true", "MAX_AUDIO_SECONDS": "600"}
    env["RESUME_GRACE_SECONDS"] = "0"  # a hang-up cancels at once (resume on retry: tests/system/test_flaky_clients.py)
    with tiny_server(tmp, **env) as server:
        yield server


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Default URL policy (private addresses refused); no model is needed for what it is asked."""
    with tiny_server(tmp_path_factory.mktemp("reflector-strict"), API_KEY=KEY, LOAD_MODEL_ON_STARTUP="false") as server:
        yield server


def post(server: ServerProcess, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", headers={**AUTH, **(headers or {})}, timeout=TIMEOUT, **kwargs)


def assert_reflector_transcript(result: dict[str, Any], *, filename: str | None) -> None:
    """Seed 002's word shape, and Reflector's own text rule: text == "".join(words).strip()."""
    expected_keys = {"text", "words"} | ({"filename"} if filename is not None else set())
    assert set(result) == expected_keys
    if filename is not None:
        assert result["filename"] == filename
    words = result["words"]
    assert words and result["text"]
    assert all(set(w) == {"word", "start", "end"} for w in words)
    assert all(w["word"].startswith(" ") and w["word"].strip() for w in words)
    assert result["text"] == "".join(w["word"] for w in words).strip()
    assert all(w["start"] <= w["end"] for w in words)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(words))


def beckett(name: str = "beckett.wav") -> tuple[str, bytes, str]:
    return (name, (AUDIO / "beckett.wav").read_bytes(), "audio/wav")


# --- POST /v1/audio/transcriptions (Reflector's form) -----------------------------------------------------------


def test_single_file_as_reflector_sends_it(server: ServerProcess) -> None:
    data = {"model": "nvidia/parakeet-tdt-0.6b-v2", "language": "en", "batch": "false"}
    response = post(server, "/v1/audio/transcriptions", files={"file": beckett("test_audio.wav")}, data=data)
    assert response.status_code == 200, response.text
    result = response.json()
    assert_reflector_transcript(result, filename="test_audio.wav")
    assert "fail better" in result["text"].lower()
    assert result["words"][-1]["end"] <= 10.5


@pytest.mark.parametrize("field", ["files", "files[]"])
def test_several_files_answer_results_in_order(server: ServerProcess, tmp_path: Path, field: str) -> None:
    m4a = transcode(AUDIO / "beckett.wav", tmp_path / "b.m4a", "aac")
    files = [(field, beckett("a.wav")), (field, ("b.m4a", m4a.read_bytes(), "audio/mp4"))]
    response = post(server, "/v1/audio/transcriptions", files=files, data={"language": "en"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["filename"] for r in results] == ["a.wav", "b.m4a"]
    for result in results:
        assert_reflector_transcript(result, filename=result["filename"])
        assert "fail better" in result["text"].lower()


def test_batch_true_answers_results_even_for_one_file(server: ServerProcess) -> None:
    response = post(server, "/v1/audio/transcriptions", files=[("files", beckett())], data={"batch": "true"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"results"} and len(body["results"]) == 1
    assert_reflector_transcript(body["results"][0], filename="beckett.wav")


@pytest.mark.parametrize(
    ("files", "data", "param"),
    [
        ([], {"batch": "false", "language": "en"}, "files"),  # neither file nor files
        ([("file", beckett()), ("files", beckett())], {}, "files"),  # both
        ([("file", beckett())], {"batch": "true"}, "batch"),  # batch without files
        ([("files", beckett())], {"batch": "maybe"}, "batch"),
    ],
)
def test_upload_form_errors(server: ServerProcess, files: list[Any], data: dict[str, str], param: str) -> None:
    # httpx only sends multipart when there is a file: give the file-less case a dummy non-file part via `files`.
    parts: list[Any] = files or [("batch", (None, data.pop("batch")))]
    response = post(server, "/v1/audio/transcriptions", files=parts, data=data)
    assert_openai_error(response, 400, param=param)


def test_english_only_model_refuses_french(server: ServerProcess) -> None:
    data = {"language": "fr", "batch": "false", "model": "nvidia/parakeet-tdt-0.6b-v2"}
    response = post(server, "/v1/audio/transcriptions", files={"file": beckett()}, data=data)
    error = assert_openai_error(response, 400, param="language")
    assert "only supports English" in str(error["message"])


def test_unknown_model_is_refused(server: ServerProcess) -> None:
    data = {"model": "large-v3", "batch": "false"}
    response = post(server, "/v1/audio/transcriptions", files={"file": beckett()}, data=data)
    assert_openai_error(response, 400, param="model")


def test_openai_sdk_live_path_reads_words(server: ServerProcess) -> None:
    """Reflector's live path: the OpenAI SDK, model whisper-1, verbose_json with word timestamps."""
    client = OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    with open(AUDIO / "beckett.wav", "rb") as f:
        result = client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="verbose_json", timestamp_granularities=["word"], language="en"
        )
    words = result.words or []
    assert words and all(0 <= w.start <= w.end <= result.duration + 0.01 for w in words)
    assert "fail better" in result.text.lower()


# --- POST /v1/audio/transcriptions-from-url ---------------------------------------------------------------------


def test_from_url_long_file_as_the_file_pipeline_sends_it(server: ServerProcess, audio_url: str) -> None:
    """No model, `batch` and other unknown keys: Reflector's file pipeline. 44 s goes through VAD chunking."""
    body = {"audio_file_url": f"{audio_url}/two_cities.wav", "language": "en", "batch": True, "extra": {"x": 1}}
    seen = len(server.request_lines("/v1/audio/transcriptions-from-url"))
    response = post(server, "/v1/audio/transcriptions-from-url", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert_reflector_transcript(result, filename=None)
    assert word_error_rate((AUDIO / "two_cities.txt").read_text(), result["text"]) <= 0.10
    assert result["words"][-1]["end"] <= 44.5
    assert server.temp_entries() == []
    line = server.next_request_line("/v1/audio/transcriptions-from-url", seen)
    log = server.log()
    assert "status=200" in line and "model=tiny.en" in line and "audio_seconds=44" in line
    assert "wisdom" not in log.lower()  # no transcript text in the log


def test_from_url_timestamp_offset_shifts_and_clamps(server: ServerProcess, audio_url: str) -> None:
    url = f"{audio_url}/beckett.wav"
    plain = post(server, "/v1/audio/transcriptions-from-url", json={"audio_file_url": url}).json()
    offset = 12.5
    shifted = post(
        server, "/v1/audio/transcriptions-from-url", json={"audio_file_url": url, "timestamp_offset": offset}
    ).json()
    assert_reflector_transcript(plain, filename=None)
    assert_reflector_transcript(shifted, filename=None)
    assert shifted["text"] == plain["text"]
    assert [w["word"] for w in shifted["words"]] == [w["word"] for w in plain["words"]]
    words = plain["words"]
    for i, (a, b) in enumerate(zip(words, shifted["words"], strict=True)):
        assert b["start"] == pytest.approx(a["start"] + offset, abs=1e-3)
        end = round(a["end"] + offset, 3)
        if i + 1 < len(words):
            end = min(end, round(words[i + 1]["start"] + offset, 3))
        assert b["end"] == pytest.approx(max(end, b["start"]), abs=1e-3)
        assert b["start"] >= offset


def test_from_url_errors(server: ServerProcess, audio_url: str) -> None:
    path = "/v1/audio/transcriptions-from-url"
    bad_json = post(server, path, content=b"{not json", headers={"Content-Type": "application/json"})
    assert_openai_error(bad_json, 400)
    assert_openai_error(post(server, path, json={"language": "en"}), 400, param="audio_file_url")
    assert_openai_error(post(server, path, json={"audio_file_url": ""}), 400, param="audio_file_url")
    wrong_type = post(server, path, json={"audio_file_url": f"{audio_url}/beckett.wav", "timestamp_offset": "x"})
    assert_openai_error(wrong_type, 400, param="timestamp_offset")
    missing = post(server, path, json={"audio_file_url": f"{audio_url}/nothing-here.wav"})
    assert assert_openai_error(missing, 404, param="audio_file_url")["message"] == "Audio file not found"
    french = post(server, path, json={"audio_file_url": f"{audio_url}/beckett.wav", "language": "fr"})
    assert "only supports English" in str(assert_openai_error(french, 400, param="language")["message"])
    not_audio = post(server, path, json={"audio_file_url": f"{audio_url}/two_cities.txt"})
    assert assert_openai_error(not_audio, 400, param="audio_file_url")["code"] in ("invalid_audio", "no_audio_stream")
    assert server.temp_entries() == []


def test_private_urls_are_refused_by_default(strict_server: ServerProcess, audio_url: str) -> None:
    for path, kwargs in (
        ("/v1/audio/transcriptions-from-url", {"json": {"audio_file_url": f"{audio_url}/beckett.wav"}}),
        ("/diarize", {"params": {"audio_file_url": f"{audio_url}/beckett.wav"}}),
    ):
        response = post(strict_server, path, **kwargs)
        error = assert_openai_error(response, 400, param="audio_file_url")
        assert error["code"] == "ssrf_refused" and "ALLOW_PRIVATE_URLS" in str(error["message"])


def test_hanging_up_cancels_the_url_job(server: ServerProcess, audio_url: str) -> None:
    before = server.log().count("status=499")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{server.url}/v1/audio/transcriptions-from-url",
            json={"audio_file_url": f"{audio_url}/two_cities.wav"},
            headers=AUTH,
            timeout=httpx.Timeout(60, read=1.5),
        )
    server.wait_until_idle()
    assert server.temp_entries() == []
    deadline = time.monotonic() + 10
    while server.log().count("status=499") == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.log().count("status=499") == before + 1


# --- POST /diarize ----------------------------------------------------------------------------------------------


def test_diarize_two_voices_with_timestamp(server: ServerProcess, audio_url: str) -> None:
    offset = 100.0
    params = {"audio_file_url": f"{audio_url}/endgame_nagg_nell.wav", "timestamp": offset}
    response = post(server, "/diarize", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"diarization"}
    segments = body["diarization"]
    assert all(set(s) == {"start", "end", "speaker"} for s in segments)
    assert {s["speaker"] for s in segments} == {0, 1}
    assert all(isinstance(s["speaker"], int) for s in segments)
    assert all(offset <= s["start"] < s["end"] <= offset + 28.5 for s in segments)
    assert all(a["end"] <= b["start"] + 1e-6 for a, b in itertools.pairwise(segments))
    assert server.temp_entries() == []


def test_diarize_errors(server: ServerProcess, audio_url: str) -> None:
    assert_openai_error(post(server, "/diarize"), 400, param="audio_file_url")
    bad = post(server, "/diarize", params={"audio_file_url": f"{audio_url}/beckett.wav", "timestamp": "soon"})
    assert_openai_error(bad, 400, param="timestamp")
    missing = post(server, "/diarize", params={"audio_file_url": f"{audio_url}/nothing.wav"})
    assert_openai_error(missing, 404, param="audio_file_url")


# --- POST /translate --------------------------------------------------------------------------------------------

SENTENCE = "The meeting starts at nine in the morning."


def test_translate_with_a_json_body(server: ServerProcess) -> None:
    response = post(
        server, "/translate", params={"text": SENTENCE}, json={"source_language": "en", "target_language": "ru"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"text"} and set(body["text"]) == {"en", "ru"}
    assert body["text"]["en"] == SENTENCE
    assert isinstance(body["text"]["ru"], str) and body["text"]["ru"].strip()


def test_translate_with_query_parameters_only(server: ServerProcess) -> None:
    """Reflector's translator client: text, source_language, target_language all in the query string, no body."""
    params = {"text": SENTENCE, "source_language": "en", "target_language": "ru"}
    response = post(server, "/translate", params=params)
    assert response.status_code == 200, response.text
    with_body = post(
        server, "/translate", params={"text": SENTENCE}, json={"source_language": "en", "target_language": "ru"}
    )
    assert response.json() == with_body.json()  # same model, deterministic
    assert "model=opus-mt-en-ru" in server.log()


def test_translate_same_language_is_identity(server: ServerProcess) -> None:
    params = {"text": SENTENCE, "source_language": "en", "target_language": "en"}
    response = post(server, "/translate", params=params)
    assert response.status_code == 200 and response.json() == {"text": {"en": SENTENCE}}


def test_translate_errors(server: ServerProcess) -> None:
    assert_openai_error(post(server, "/translate", params={"source_language": "en", "target_language": "ru"}), 400)
    assert_openai_error(post(server, "/translate", params={"text": "x", "source_language": "en"}), 400)
    bad_code = post(server, "/translate", params={"text": "x", "source_language": "english", "target_language": "ru"})
    assert_openai_error(bad_code, 400, param="source_language")
    no_model = post(server, "/translate", params={"text": "Hello.", "source_language": "en", "target_language": "de"})
    error = assert_openai_error(no_model, 503)
    assert "opus-mt-en-de" in str(error["message"])


# --- auth -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/audio/transcriptions", "/v1/audio/transcriptions-from-url", "/diarize", "/translate"]
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_every_route_needs_the_bearer_key(server: ServerProcess, path: str, headers: dict[str, str]) -> None:
    response = httpx.post(f"{server.url}{path}", headers=headers, timeout=TIMEOUT)
    assert_openai_error(response, 401)


# --- model and language mapping (in process, no model is loaded) -------------------------------------------------


def _services(model: str, allowed: str) -> Any:
    from app.api.deps import Services
    from app.settings import load_settings

    return Services(load_settings({"MODEL": model, "ALLOWED_MODELS": allowed}, dotenv=None))


@pytest.mark.parametrize("requested", [None, "", "whisper-1", "nvidia/parakeet-tdt-0.6b-v2", "tiny.en"])
def test_reflector_names_mean_the_server_model(requested: str | None) -> None:
    from app.api.reflector import reflector_plan

    plan = reflector_plan(_services("tiny.en", "tiny.en"), requested, None)
    assert (plan.model, plan.decoding.language) == ("tiny.en", "en")


def test_an_allowed_reflector_name_is_used_as_is() -> None:
    from app.api.reflector import reflector_plan

    services = _services("tiny.en", "tiny.en,nvidia/parakeet-tdt-0.6b-v2")
    assert reflector_plan(services, "nvidia/parakeet-tdt-0.6b-v2", "en").model == "nvidia/parakeet-tdt-0.6b-v2"
    assert reflector_plan(services, None, None).model == "tiny.en"


def test_omitted_language_is_the_models_own_when_it_has_no_english() -> None:
    from app.api.reflector import reflector_plan
    from app.errors import InvalidInput

    services = _services("v3_ctc", "v3_ctc")
    assert reflector_plan(services, None, None).decoding.language == "ru"
    with pytest.raises(InvalidInput, match="only supports Russian"):
        reflector_plan(services, None, "en")
