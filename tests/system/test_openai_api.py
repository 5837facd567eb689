"""The OpenAI surface, driven the way users drive it: the real `openai` SDK and plain HTTP against `python -m app`."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.audio_factory import silence, transcode
from tests.server import ServerProcess
from tools.textmetrics import word_error_rate

SRT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)$")
VTT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)$")


@pytest.fixture(scope="module")
def client(whisper_server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=f"{whisper_server.url}/v1", api_key="unused", max_retries=0)


def assert_openai_error(response: httpx.Response, status: int, *, param: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    if param is not None:
        assert body["error"]["param"] == param
    assert "Traceback" not in response.text
    return body["error"]


def parse_cues(text: str, *, vtt: bool) -> list[tuple[float, float, list[str]]]:
    """A strict subtitle parser: every block is (index, time line, 1-2 text lines)."""
    blocks = [b for b in text.strip("\n").split("\n\n") if b]
    if vtt:
        assert blocks[0] == "WEBVTT"
        blocks = blocks[1:]
    cues = []
    for number, block in enumerate(blocks, 1):
        lines = block.split("\n")
        if not vtt:
            assert lines[0] == str(number)
            lines = lines[1:]
        match = (VTT_TIME if vtt else SRT_TIME).match(lines[0])
        assert match, lines[0]
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups())
        start = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000
        end = h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        cues.append((start, end, lines[1:]))
    return cues


def assert_readable_cues(cues: list[tuple[float, float, list[str]]], duration: float) -> None:
    assert cues
    previous_end = 0.0
    for start, end, lines in cues:
        assert previous_end <= start < end <= duration + 0.5
        assert 1 <= len(lines) <= 2 and all(0 < len(line) <= 42 for line in lines)
        assert end - start <= 7.0
        previous_end = end


def test_json_through_the_sdk_is_accurate(client: OpenAI, audio_dir: Path) -> None:
    with open(audio_dir / "two_cities.wav", "rb") as f:
        result = client.audio.transcriptions.create(file=f, model="whisper-1")
    reference = (audio_dir / "two_cities.txt").read_text()
    assert word_error_rate(reference, result.text) <= 0.10
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == 45


def test_text_format_is_plain_text(client: OpenAI, audio_dir: Path) -> None:
    with open(audio_dir / "beckett.wav", "rb") as f:
        text = client.audio.transcriptions.create(file=f, model="tiny.en", response_format="text")
    assert isinstance(text, str) and "fail better" in text.lower() and not text.startswith("{")


def test_verbose_json_has_ordered_words_inside_the_audio(client: OpenAI, audio_dir: Path) -> None:
    with open(audio_dir / "two_cities.wav", "rb") as f:
        result = client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="verbose_json", timestamp_granularities=["word", "segment"]
        )
    assert result.language == "english" and abs(result.duration - 44.37) < 0.1
    words = result.words or []
    assert len(words) >= 100
    assert all(0 <= w.start <= w.end <= result.duration for w in words)
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    # each word carries its separating space, so Reflector's "".join(words) rebuilds the text
    assert all(w.word.startswith(" ") for w in words)
    assert "".join(w.word for w in words).strip() == result.text
    segments = result.segments or []
    assert segments and all(s.start < s.end for s in segments)
    assert [s.id for s in segments] == list(range(len(segments)))
    # Whisper knows its decoder statistics: they are reported, not invented zeros
    assert any(s.avg_logprob != 0.0 for s in segments) and all(s.tokens for s in segments)
    assert " ".join(s.text for s in segments) == result.text


def test_verbose_json_with_only_words_leaves_out_segments(client: OpenAI, audio_dir: Path) -> None:
    with open(audio_dir / "beckett.wav", "rb") as f:
        result = client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="verbose_json", timestamp_granularities=["word"]
        )
    assert result.words and not result.segments


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_parse_and_respect_cue_limits(client: OpenAI, audio_dir: Path, fmt: str) -> None:
    with open(audio_dir / "two_cities.wav", "rb") as f:
        text = client.audio.transcriptions.create(file=f, model="whisper-1", response_format=fmt)  # type: ignore[call-overload]
    cues = parse_cues(text, vtt=fmt == "vtt")
    assert len(cues) >= 8  # cues follow the words, not one per 30-second chunk
    assert_readable_cues(cues, 44.4)


def test_streaming_deltas_join_to_the_synchronous_text(client: OpenAI, audio_dir: Path) -> None:
    with open(audio_dir / "two_cities.wav", "rb") as f:
        synchronous = client.audio.transcriptions.create(file=f, model="whisper-1").text
    with open(audio_dir / "two_cities.wav", "rb") as f:
        events = list(client.audio.transcriptions.create(file=f, model="whisper-1", stream=True))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    done = [e for e in events if e.type == "transcript.text.done"]
    assert len(deltas) >= 1 and len(done) == 1
    assert "".join(deltas) == done[0].text == synchronous
    assert done[0].usage is not None and done[0].usage.seconds == 45  # type: ignore[union-attr]


def test_other_containers_and_rates_decode(client: OpenAI, audio_dir: Path, tmp_path: Path) -> None:
    stereo_ogg = transcode(audio_dir / "beckett.wav", tmp_path / "beckett.m4a", "aac", channels=2, rate=44100)
    with open(stereo_ogg, "rb") as f:
        text = client.audio.transcriptions.create(file=f, model="whisper-1").text
    assert "fail better" in text.lower()


def test_silence_gives_empty_text(client: OpenAI, tmp_path: Path) -> None:
    with open(silence(5.0, tmp_path / "quiet.wav"), "rb") as f:
        result = client.audio.transcriptions.create(file=f, model="whisper-1")
    assert result.text == ""


def test_models_and_health(whisper_server: ServerProcess, client: OpenAI) -> None:
    models = client.models.list()
    offered = [m.id for m in models.data if getattr(m, "alias_of", None) is None]
    aliases = {m.id: getattr(m, "alias_of") for m in models.data if getattr(m, "alias_of", None) is not None}
    assert offered == ["tiny.en"] and all(m.object == "model" for m in models.data)
    # OpenAI's names are listed too, each meaning MODEL (a client that checks its configured name finds it)
    assert {"whisper-1", "gpt-4o-transcribe"} <= aliases.keys() and set(aliases.values()) == {"tiny.en"}
    health = httpx.get(f"{whisper_server.url}/health").json()
    assert health == health | {"status": "ok", "model": "tiny.en", "device": "cpu", "loaded": True}


# --- errors, each in OpenAI's shape --------------------------------------------------------------------------------


def post(server: ServerProcess, files: dict[str, object] | None = None, **data: str) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/audio/transcriptions", files=files, data=data, timeout=60)  # type: ignore[arg-type]


def beckett(audio_dir: Path) -> dict[str, object]:
    return {"file": ("beckett.wav", (audio_dir / "beckett.wav").read_bytes(), "audio/wav")}


def test_missing_file(whisper_server: ServerProcess) -> None:
    assert_openai_error(post(whisper_server, {"model": (None, "whisper-1")}), 400, param="file")


def test_not_multipart(whisper_server: ServerProcess) -> None:
    response = httpx.post(f"{whisper_server.url}/v1/audio/transcriptions", json={"model": "whisper-1"})
    assert_openai_error(response, 400)


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("model", "whisper-9000", "model"),
        ("response_format", "docx", "response_format"),
        ("timestamp_granularities[]", "sentence", "timestamp_granularities"),
        ("temperature", "hot", "temperature"),
        ("stream", "perhaps", "stream"),
    ],
)
def test_bad_parameters(whisper_server: ServerProcess, audio_dir: Path, field: str, value: str, param: str) -> None:
    assert_openai_error(post(whisper_server, beckett(audio_dir), **{field: value}), 400, param=param)


def test_language_the_model_cannot_do(whisper_server: ServerProcess, audio_dir: Path) -> None:
    error = assert_openai_error(post(whisper_server, beckett(audio_dir), language="fr"), 400, param="language")
    assert error["message"] == "Model 'tiny.en' only supports English; got language='fr'"


def test_translation_needs_a_multilingual_model(whisper_server: ServerProcess, audio_dir: Path) -> None:
    response = httpx.post(f"{whisper_server.url}/v1/audio/translations", files=beckett(audio_dir), timeout=60)  # type: ignore[arg-type]
    assert_openai_error(response, 400, param="model")


@pytest.mark.parametrize(
    ("name", "content"),
    [("noise.wav", b"RIFF\x00\x00garbage" * 50), ("empty.wav", b""), ("notes.txt", b"just some text\n" * 100)],
)
def test_files_that_are_not_audio(whisper_server: ServerProcess, name: str, content: bytes) -> None:
    error = assert_openai_error(post(whisper_server, {"file": (name, content, "audio/wav")}), 400, param="file")
    assert "audio" in str(error["message"]).lower()


def test_unknown_route_and_method(whisper_server: ServerProcess) -> None:
    assert_openai_error(httpx.get(f"{whisper_server.url}/v1/nothing-here"), 404)
    assert_openai_error(httpx.get(f"{whisper_server.url}/v1/audio/transcriptions"), 405)


def test_sdk_raises_bad_request_with_our_message(client: OpenAI, audio_dir: Path) -> None:
    with open(audio_dir / "beckett.wav", "rb") as f, pytest.raises(openai.BadRequestError) as raised:
        client.audio.transcriptions.create(file=f, model="not-a-model")
    assert "not-a-model" in raised.value.message


def test_no_temp_files_remain(whisper_server: ServerProcess, audio_dir: Path) -> None:
    post(whisper_server, beckett(audio_dir))
    post(whisper_server, {"file": ("x.wav", b"garbage", "audio/wav")})
    post(whisper_server, beckett(audio_dir), model="nope")
    assert whisper_server.temp_entries() == []


def test_log_lines_never_carry_transcript_text(whisper_server: ServerProcess, audio_dir: Path) -> None:
    post(whisper_server, beckett(audio_dir))
    log = whisper_server.log().lower()
    assert "status=200" in log or '"status": 200' in log
    for phrase in ("fail better", "try again", "best of times"):
        assert phrase not in log
