"""OpenAI's newer transcription fields (issue 22): `include[]=logprobs` on json (each token and its log
probability, from the engine's own scores) and `languages[]` (the languages the audio may be in).

Whisper tiny.en through the real server; the random-weight GigaAM through its engine (its tokens are noise, their
scores are real). `languages[]` under MODEL=auto is in tests/system/test_auto_routing.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests import gigaam_fixture
from tests.api.test_api_inprocess import AUTH, NOT_AUDIO, error_of
from tests.api.test_api_inprocess import client as inprocess_client  # noqa: F401  (the in-process app, no model)
from tests.audio_helpers import BECKETT, load
from tests.server import ServerProcess

tiny_gigaam_models_dir = gigaam_fixture.tiny_gigaam_models_dir  # the fixture, for this module
TIMEOUT = 120.0


def openai_client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=TIMEOUT)


def check_logprobs(text: str, logprobs: list) -> None:  # type: ignore[type-arg]
    """Tokens spell the text (with their leading spaces), in order; each has a log probability and its bytes."""
    assert logprobs, "no logprobs"
    assert "".join(t.token for t in logprobs).split() == text.split()
    for t in logprobs:
        assert math.isfinite(t.logprob) and t.logprob <= 0.0
        assert bytes(int(b) for b in t.bytes).decode("utf-8", errors="replace") == t.token


def test_whisper_gives_each_tokens_logprob(whisper_server: ServerProcess) -> None:
    with open(BECKETT, "rb") as f:
        result = openai_client(whisper_server).audio.transcriptions.create(
            file=f, model="gpt-4o-transcribe", include=["logprobs"]
        )
    check_logprobs(result.text, result.logprobs or [])
    # a confident model on clear speech: most tokens are near certain
    assert sum(t.logprob > math.log(0.5) for t in result.logprobs or []) > len(result.logprobs or []) / 2
    with open(BECKETT, "rb") as f:
        plain = openai_client(whisper_server).audio.transcriptions.create(file=f, model="gpt-4o-transcribe")
    assert plain.logprobs is None and plain.text == result.text  # asking for them changes nothing else


def test_a_stream_carries_the_logprobs_of_each_delta(whisper_server: ServerProcess) -> None:
    with open(BECKETT, "rb") as f:
        response = httpx.post(
            f"{whisper_server.url}/v1/audio/transcriptions",
            data={"model": "gpt-4o-mini-transcribe", "stream": "true", "include[]": "logprobs"},
            files={"file": f},
            timeout=TIMEOUT,
        )
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
    deltas = [e for e in events if e["type"] == "transcript.text.delta"]
    assert deltas and all(e["logprobs"] for e in deltas)
    spelled = "".join(t["token"] for e in deltas for t in e["logprobs"])
    assert spelled.split() == events[-1]["text"].split()


def test_gigaam_gives_each_tokens_logprob(tiny_gigaam_models_dir: Path) -> None:
    from app.audio.decode import decode_all
    from app.engines.protocol import Decoding

    engine = load("v3_ctc", tiny_gigaam_models_dir, num_threads=2)
    (result,) = engine.transcribe([decode_all(BECKETT)], Decoding(language="ru", logprobs=True))
    (without,) = engine.transcribe([decode_all(BECKETT)], Decoding(language="ru"))
    assert [s.text for s in result.segments] == [s.text for s in without.segments]
    assert all(s.logprobs == () for s in without.segments)  # kept only when asked for
    tokens = [t for s in result.segments for t in s.logprobs]

    class Item:  # the wire shape, as the renderer gives it
        def __init__(self, t):  # type: ignore[no-untyped-def]
            self.token, self.logprob, self.bytes = t.token, t.logprob, list(t.data)

    check_logprobs(" ".join(s.text for s in result.segments), [Item(t) for t in tokens])


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"include[]": "logprobs", "response_format": "verbose_json"}, "include"),
        ({"include[]": "tokens"}, "include"),
        ({"languages[]": "de"}, "languages"),  # tiny.en knows English only
        ({"languages[]": ["en", "de"]}, "languages"),
        ({"languages[]": "en", "language": "de"}, "languages"),
        ({"languages[]": "klingon"}, "languages"),
    ],
)
def test_bad_include_and_languages_name_their_parameter(
    inprocess_client,  # noqa: F811
    data: dict[str, object],
    param: str,
) -> None:
    response = inprocess_client.post("/v1/audio/transcriptions", headers=AUTH, data=data, files=NOT_AUDIO)
    error_of(response, 400, param)


@pytest.mark.parametrize("data", [{"languages[]": "en"}, {"languages[]": ["en", "EN"], "language": "en"}])
def test_one_language_in_languages_is_the_language(inprocess_client, data: dict[str, object]) -> None:  # noqa: F811
    """Past the language check: what is wrong is the audio."""
    response = inprocess_client.post("/v1/audio/transcriptions", headers=AUTH, data=data, files=NOT_AUDIO)
    error_of(response, 400, "file")
