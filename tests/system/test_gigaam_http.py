"""A random-weight GigaAM v3 model (the real architecture, built by tools) through the whole HTTP path.

Its text is gibberish, but everything around it is real: onnx-asr loading from MODELS_DIR, VAD chunking, word
timestamps, all six response formats, streaming, the language check, and missing weights.
"""

from __future__ import annotations

import itertools
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from openai.types.audio import TranscriptionDiarized

from tests.server import ServerProcess
from tests.system.test_openai_api import assert_openai_error, assert_readable_cues, parse_cues


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


@pytest.fixture(scope="module")
def gigaam_server(tiny_gigaam_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("gigaam-server")
    server = ServerProcess(
        {
            "MODEL": "v3_ctc",
            "ALLOWED_MODELS": "v3_ctc,v3_e2e_ctc",
            "MODELS_DIR": str(tiny_gigaam_models_dir),
            "TMPDIR": str(tmp),
            "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}",  # no hub: v3_e2e_ctc's weights are not there
        },
        log_path=tmp / "server.log",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(gigaam_server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=f"{gigaam_server.url}/v1", api_key="unused", max_retries=0)


def test_json_and_text(client: OpenAI, audio_dir: Path) -> None:
    with open(audio_dir / "two_cities.wav", "rb") as f:
        result = client.audio.transcriptions.create(file=f, model="v3_ctc", language="ru")
    assert result.text.strip() and result.usage is not None and result.usage.seconds == 45
    with open(audio_dir / "two_cities.wav", "rb") as f:
        text = client.audio.transcriptions.create(file=f, model="whisper-1", response_format="text")
    assert text == result.text + "\n"  # the same model (MODEL), the same deterministic output


def test_verbose_json_words_are_ordered_and_inside_the_audio(client: OpenAI, audio_dir: Path) -> None:
    with open(audio_dir / "two_cities.wav", "rb") as f:
        result = client.audio.transcriptions.create(
            file=f, model="v3_ctc", response_format="verbose_json", timestamp_granularities=["word", "segment"]
        )
    assert result.language == "russian" and abs(result.duration - 44.37) < 0.1
    words = result.words or []
    assert words and all(0 <= w.start <= w.end <= result.duration for w in words)
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert "".join(w.word for w in words).strip() == result.text
    segments = result.segments or []
    # CTC knows no decoder statistics: zeros where OpenAI has numbers, and an honest compression ratio
    assert segments and all(s.avg_logprob == 0.0 and s.compression_ratio > 0 for s in segments)


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles(client: OpenAI, audio_dir: Path, fmt: str) -> None:
    with open(audio_dir / "two_cities.wav", "rb") as f:
        text = client.audio.transcriptions.create(file=f, model="v3_ctc", response_format=fmt)  # type: ignore[call-overload]
    assert_readable_cues(parse_cues(text, vtt=fmt == "vtt"), 44.4)


def test_stream_matches_the_synchronous_text(client: OpenAI, audio_dir: Path) -> None:
    with open(audio_dir / "two_cities.wav", "rb") as f:
        synchronous = client.audio.transcriptions.create(file=f, model="v3_ctc").text
    with open(audio_dir / "two_cities.wav", "rb") as f:
        events = list(client.audio.transcriptions.create(file=f, model="v3_ctc", stream=True))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert "".join(deltas) == events[-1].text == synchronous  # type: ignore[union-attr]


def test_a_language_the_model_cannot_do(gigaam_server: ServerProcess, audio_dir: Path) -> None:
    files = {"file": ("b.wav", (audio_dir / "beckett.wav").read_bytes(), "audio/wav")}
    response = httpx.post(
        f"{gigaam_server.url}/v1/audio/transcriptions", files=files, data={"language": "en"}, timeout=60
    )
    error = assert_openai_error(response, 400, param="language")
    assert error["message"] == "Model 'v3_ctc' only supports Russian; got language='en'"


def test_missing_weights_say_what_to_do(gigaam_server: ServerProcess, audio_dir: Path) -> None:
    files = {"file": ("b.wav", (audio_dir / "beckett.wav").read_bytes(), "audio/wav")}
    url = f"{gigaam_server.url}/v1/audio/transcriptions"
    error = assert_openai_error(httpx.post(url, files=files, data={"model": "v3_e2e_ctc"}, timeout=60), 503)
    message = str(error["message"])
    assert "v3_e2e_ctc" in message and "python -m app download" in message and "\n" not in message
    # the same failure after a stream has started arrives as an error event, and the stream closes without [DONE]
    with httpx.stream("POST", url, files=files, data={"model": "v3_e2e_ctc", "stream": "true"}, timeout=60) as r:
        payloads = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert payloads and "[DONE]" not in payloads
    last = json.loads(payloads[-1])
    assert last["type"] == "error" and last["error"]["message"] == message
    # the resident model was not evicted for a model that could not be had, and it still serves
    models = httpx.get(f"{gigaam_server.url}/v1/models").json()["data"]
    states = {m["id"]: m["state"] for m in models if "alias_of" not in m}
    assert states == {"v3_ctc": "loaded", "v3_e2e_ctc": "unloaded"}
    assert httpx.post(url, files=files, timeout=60).status_code == 200


def test_keywords_are_accepted_and_ignored(client: OpenAI, audio_dir: Path) -> None:
    """CTC/RNN-T models have no cheap way to favour words: keywords are accepted (best effort), never an error."""
    with open(audio_dir / "beckett.wav", "rb") as f:
        plain = client.audio.transcriptions.create(file=f, model="v3_ctc")
    with open(audio_dir / "beckett.wav", "rb") as f:
        with_keywords = client.audio.transcriptions.create(file=f, model="v3_ctc", keywords=["Beckett", "Godot"])
    assert with_keywords.text == plain.text


def test_diarized_json(client: OpenAI, audio_dir: Path) -> None:
    """Who said what with a CTC engine (its words are free): two voices of a dialogue, segments split by speaker."""
    with open(audio_dir / "endgame_nagg_nell.wav", "rb") as f:
        result = client.audio.transcriptions.create(file=f, model="v3_ctc", response_format="diarized_json")
    assert isinstance(result, TranscriptionDiarized)
    assert result.segments and result.text == " ".join(s.text for s in result.segments)
    assert list(dict.fromkeys(s.speaker for s in result.segments)) == ["A", "B"]
    assert all(a.end <= b.start for a, b in itertools.pairwise(result.segments))


def test_live_dictation_runs_on_gigaam(gigaam_server: ServerProcess) -> None:
    """The Realtime route with GigaAM CTC (random weights: the text is gibberish, the event flow is real): speech
    found by the VAD, partial decodes of the growing utterance, a completed transcript per utterance; a language
    GigaAM cannot do is an error event."""
    import asyncio

    from tests.realtime_client import pcm24k, stream, ws_url
    from tests.server import AUDIO

    session = {"type": "transcription", "audio": {"input": {"transcription": {"model": "whisper-1", "language": "ru"}}}}
    events = asyncio.run(
        stream(ws_url(gigaam_server.url), pcm24k(AUDIO / "beckett.wav", silence_after=1.0), session=session, speed=2.0)
    )
    kinds = [e.type for e in events]
    assert "session.updated" in kinds and "error" not in kinds
    assert kinds.count("input_audio_buffer.speech_started") >= 1
    assert kinds.count("conversation.item.input_audio_transcription.completed") == kinds.count(
        "input_audio_buffer.committed"
    )
    bad = {"type": "transcription", "audio": {"input": {"transcription": {"language": "fr"}}}}
    refused = asyncio.run(stream(ws_url(gigaam_server.url), b"", session=bad, settle_seconds=1.0))
    errors = [e.event["error"] for e in refused if e.type == "error"]
    assert errors and errors[0]["code"] == "unsupported_language"
