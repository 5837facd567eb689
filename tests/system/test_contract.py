"""The OpenAPI contract (`app/api/contract.py`): what the served document declares, and schemathesis `--checks all`
over it against a real server (tiny.en as MODEL, Whisper `base` allowed so that translations can succeed).

The schemathesis run uses its CLI, as a user would: `tests/schemathesis.toml` (two settings, each with its reason)
and `tests/contract_hooks.py` (real audio where a schema-valid request needs audio). The seed is fixed so that a
failure reproduces; set CONTRACT_SEED to explore others.
"""

from __future__ import annotations

import os
import re
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.api.params import GRANULARITIES, RESPONSE_FORMATS
from tests.server import AUDIO, ROOT, ServerProcess, static_files, tiny_server

KEY = "contract-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_EXAMPLES = 15
SEED = os.environ.get("CONTRACT_SEED", "20261201")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, whisper_base_models_dir: Path) -> Iterator[ServerProcess]:
    env = {
        "MODEL": "tiny.en",
        "ALLOWED_MODELS": "tiny.en,base",
        "MODELS_DIR": str(whisper_base_models_dir),
        "API_KEY": KEY,
        "ALLOW_PRIVATE_URLS": "true",  # audio_file_url points at a static server on 127.0.0.1
    }
    with tiny_server(tmp_path_factory.mktemp("contract-server"), **env) as server:
        yield server


@pytest.fixture(scope="module")
def document(server: ServerProcess) -> dict[str, Any]:
    res = httpx.get(f"{server.url}/docs/openapi.json", timeout=30)
    assert res.status_code == 200
    return dict(res.json())


def schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(document["components"]["schemas"][name])


def test_transcription_form_fields_and_formats(document: dict[str, Any]) -> None:
    operation = document["paths"]["/v1/audio/transcriptions"]["post"]
    body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body == {"$ref": "#/components/schemas/TranscriptionForm"}
    form = schema(document, "TranscriptionForm")
    fields = form["properties"]
    for name in (
        "file",
        "model",
        "language",
        "prompt",
        "response_format",
        "temperature",
        "timestamp_granularities[]",
        "stream",
        "chunking_strategy",
        "known_speaker_names[]",
        "known_speaker_references[]",
        "keywords[]",
    ):
        assert name in fields, name
    assert fields["file"]["type"] == "string" and fields["file"]["format"] == "binary"
    reflector = form["anyOf"][1]  # Reflector's form: the other branch (Swagger UI sends every top-level field)
    assert reflector["required"] == ["files[]"] and reflector["properties"]["file"] is False
    assert reflector["properties"]["files[]"]["items"]["format"] == "binary" and "batch" in reflector["properties"]
    assert sorted(fields["response_format"]["enum"]) == sorted(RESPONSE_FORMATS)
    granularities = fields["timestamp_granularities[]"]["items"]["anyOf"]  # and "": an empty list, as forms send it
    assert [sorted(g["enum"]) for g in granularities] == [sorted(GRANULARITIES), [""]]
    assert fields["temperature"]["minimum"] == 0 and fields["temperature"]["maximum"] == 1
    assert "tiny.en" in fields["model"]["enum"] and "base" in fields["model"]["enum"]
    assert form["anyOf"][0]["required"] == ["file"]  # OpenAI's form, or Reflector's
    # tiny.en takes English only, base any language: the document says which goes with which
    by_model = form["allOf"][0]["anyOf"]
    assert by_model[0]["properties"]["language"]["enum"] == ["", "en"]
    assert "de" in by_model[1]["properties"]["language"]["enum"] and by_model[1]["required"] == ["model"]
    translation = schema(document, "TranslationForm")
    assert "diarized_json" not in translation["properties"]["response_format"]["enum"]
    assert translation["properties"]["model"]["enum"] == ["base"] and "model" in translation["required"]


def test_transcription_responses(document: dict[str, Any]) -> None:
    responses = document["paths"]["/v1/audio/transcriptions"]["post"]["responses"]
    ok = responses["200"]["content"]
    assert set(ok) == {"application/json", "text/plain", "text/vtt", "text/event-stream"}
    shapes = {s["$ref"].rsplit("/", 1)[1] for s in ok["application/json"]["schema"]["anyOf"]}
    assert {"JsonBody", "VerboseBody", "DiarizedBody", "ReflectorTranscript", "ReflectorResults"} == shapes
    events = schema(document, "StreamEvent")["anyOf"]
    assert {e["$ref"].rsplit("/", 1)[1] for e in events} == {"DeltaEvent", "DoneEvent", "SegmentEvent", "ErrorEvent"}
    assert set(responses) == {"200", "400", "401", "408", "413", "499", "503", "507"}
    for status in ("400", "401", "408", "413", "499", "503", "507"):
        assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert "Retry-After" in responses["503"]["headers"] and "Retry-After" in responses["507"]["headers"]
    error = schema(document, "ErrorBody")
    assert set(error["properties"]) == {"message", "type", "param", "code"}
    from_url = document["paths"]["/v1/audio/transcriptions-from-url"]["post"]["responses"]
    assert {"404", "502", "504"} <= set(from_url)


def test_whisper_asr_operations(document: dict[str, Any]) -> None:
    asr = document["paths"]["/asr"]["post"]
    assert asr["requestBody"]["content"]["multipart/form-data"]["schema"] == {"$ref": "#/components/schemas/AsrForm"}
    params = {p["name"]: p for p in asr["parameters"]}
    assert set(params) >= {"task", "language", "output", "encode", "initial_prompt", "word_timestamps", "diarize"}
    assert params["output"]["schema"]["enum"] == ["txt", "vtt", "srt", "tsv", "json"]
    assert schema(document, "AsrTask")["enum"] == ["transcribe"]  # MODEL is tiny.en: it cannot translate
    assert schema(document, "AsrLanguage")["enum"] == ["", "en"]
    assert set(asr["responses"]["200"]["content"]) == {"text/plain"}
    detect = document["paths"]["/detect-language"]["post"]["responses"]["200"]["content"]["application/json"]
    assert detect["schema"] == {"$ref": "#/components/schemas/DetectedLanguage"}


def test_job_operations(document: dict[str, Any]) -> None:
    paths = document["paths"]
    submit = paths["/v1/jobs"]["post"]
    assert submit["requestBody"]["content"]["multipart/form-data"]["schema"] == {"$ref": "#/components/schemas/JobForm"}
    accepted = submit["responses"]["202"]["content"]["application/json"]["schema"]
    assert accepted == {"$ref": "#/components/schemas/Job"}  # inferred from the handler's Struct
    assert "Retry-After" in submit["responses"]["503"]["headers"]  # MAX_JOBS, MAX_QUEUE
    form = schema(document, "JobForm")["properties"]
    assert "stream" not in form and form["task"]["enum"] == ["transcribe", "translate"]
    assert set(form) >= {"file", "model", "language", "response_format", "known_speaker_names[]", "keywords[]"}
    job = schema(document, "Job")["properties"]
    assert set(job) >= {"id", "status", "progress", "position", "eta_seconds", "expires_at", "duration", "error"}
    assert job["status"]["enum"] == ["queued", "running", "succeeded", "failed", "cancelled"]
    listed = paths["/v1/jobs"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed == {"$ref": "#/components/schemas/JobList"}
    assert "id" not in schema(document, "JobSummary")["properties"]  # the queue shows short ids only
    result = paths["/v1/jobs/{job_id}/result"]["get"]
    assert {p["name"] for p in result["parameters"]} == {"job_id", "response_format", "timestamp_granularities[]"}
    assert set(result["responses"]["200"]["content"]) == {"application/json", "text/plain", "text/vtt"}
    assert {"404", "409"} <= set(result["responses"]) and "404" in paths["/v1/jobs/{job_id}"]["delete"]["responses"]


def test_bearer_security(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "API_KEY",
    }
    assert document["components"]["securitySchemes"]["basicAuth"]["scheme"] == "basic"  # the key as the password
    assert document["security"] == [{"bearerAuth": []}, {"basicAuth": []}]
    paths = document["paths"]
    assert paths["/health"]["get"]["security"] == [] and paths["/metrics"]["get"]["security"] == []
    assert "security" not in paths["/v1/audio/transcriptions"]["post"]  # the document's own: bearerAuth


def _clip(path: Path, seconds: float) -> None:
    with wave.open(str(AUDIO / "beckett.wav")) as src:
        params = src.getparams()
        frames = src.readframes(int(seconds * src.getframerate()))
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(frames)


def _readable(report: str) -> str:
    """schemathesis's report with binary bodies cut short, so a failure shows which operation and request failed."""
    lines = [line if len(line) <= 240 else f"{line[:240]}... ({len(line)} chars)" for line in report.splitlines()]
    return "\n".join(lines)[-12000:]


@pytest.mark.slow
@pytest.mark.timeout(900)  # a few hundred transcriptions (16 operations): as long as its own subprocess may take
def test_schemathesis_all_checks(server: ServerProcess, tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    _clip(www / "clip.wav", 3.0)  # short: every schema-valid request transcribes it
    with static_files(www) as audio_base:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SCHEMATHESIS_HOOKS": "tests.contract_hooks",
            "CONTRACT_CLIP": str(www / "clip.wav"),
            "CONTRACT_VOICE": str(www / "clip.wav"),
            "CONTRACT_AUDIO_URL": f"{audio_base}/clip.wav",
        }
        command = [
            str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "schemathesis"),
            "--config-file",
            str(ROOT / "tests" / "schemathesis.toml"),
            "run",
            f"{server.url}/docs/openapi.json",
            "--checks",
            "all",
            "--phases",
            "examples,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            SEED,
            "--workers",
            "1",
            "--request-timeout",
            "120",
            "--header",
            f"Authorization: Bearer {KEY}",
            "--no-color",
        ]
        run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    summary = _readable(run.stdout)
    assert run.returncode == 0, summary
    generated = re.search(r"(\d+) generated", run.stdout)
    assert generated is not None and int(generated.group(1)) >= 4 * MAX_EXAMPLES, summary
    assert re.search(r"Tested: 16\b", run.stdout), summary  # every operation
    print(f"schemathesis --checks all: {generated.group(0)} cases, no failure (seed {SEED})")
    assert "Traceback" not in server.log()
    server.wait_until_idle(timeout=600)  # the jobs it submitted run on after their 202
    assert server.temp_entries() == []
