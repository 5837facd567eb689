"""Hostile and careless media (issue 26): every file of the corpus (`tests/hostile_media.py`), and any WAV header
Hypothesis makes up, is answered with a transcript or a 400; never a 500, never an empty 200 for audible speech; the
temp folder is empty and the server healthy afterwards.

The decoder and the probe are tested in process (fast, many examples); a sample goes through the real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.audio.decode import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, decode_all, probe_audio
from app.errors import InvalidInput
from tests.hostile_media import (
    CORPUS,
    CORPUS_MAX_AUDIO_SECONDS,
    EXTENSIBLE,
    FLOAT,
    PCM,
    Case,
    sounds_like_speech,
    wav_bytes,
)
from tests.server import ServerProcess, tiny_server

ERROR_KEYS = {"message", "type", "param", "code"}


def decode_like_the_server(path: Path, max_seconds: float) -> np.ndarray:
    """What a request does with its file: probe it (before queueing), then decode it all (the pipeline)."""
    probe_audio(path, max_seconds)
    return decode_all(path, max_seconds=max_seconds)


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_the_decoder_answers_every_case_with_audio_or_a_refusal(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "input"
    path.write_bytes(case.make(tmp_path))
    try:
        audio = decode_like_the_server(path, CORPUS_MAX_AUDIO_SECONDS)
    except InvalidInput as refusal:
        assert case.expect != "speech", f"refused: {refusal.message}"
        assert refusal.about == "audio" and refusal.code
        if case.code is not None:
            assert refusal.code == case.code, refusal.message
        return
    assert case.expect != "refused", f"decoded {audio.size / 16000:.1f} s"
    assert audio.dtype == np.float32 and np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    if case.expect == "speech":
        assert audio.size >= 16000 * 3 and np.abs(audio).max() > 0.05  # audible, not a click


def test_refusals_name_the_problem(tmp_path: Path) -> None:
    by_name = {c.name: c for c in CORPUS}
    messages = {}
    for name in ("rate_2_hz_bomb", "rate_0x7fffffff", "float32_every_7th_nan", "silent_webm_without_duration"):
        path = tmp_path / name
        path.write_bytes(by_name[name].make(tmp_path))
        with pytest.raises(InvalidInput) as refusal:
            decode_like_the_server(path, CORPUS_MAX_AUDIO_SECONDS)
        messages[name] = refusal.value.message
    assert f"2 Hz is below {MIN_SAMPLE_RATE} Hz" in messages["rate_2_hz_bomb"]
    assert f"2147483647 Hz is above {MAX_SAMPLE_RATE} Hz" in messages["rate_0x7fffffff"]
    assert "not numbers (NaN or infinity), the first at 0.00 s" in messages["float32_every_7th_nan"]
    # no header said how long it is: the limit is all the message can name
    assert messages["silent_webm_without_duration"] == (
        f"Audio is longer than the limit of {CORPUS_MAX_AUDIO_SECONDS} s (MAX_AUDIO_SECONDS)"
    )


def test_a_file_without_a_declared_length_is_measured_by_the_probe(tmp_path: Path) -> None:
    """The probe refuses it before the worker decodes MAX_AUDIO_SECONDS of it (the pipeline still would)."""
    case = next(c for c in CORPUS if c.name == "silent_webm_without_duration")
    path = tmp_path / "silent.webm"
    path.write_bytes(case.make(tmp_path))
    with pytest.raises(InvalidInput, match="longer than"):
        probe_audio(path, CORPUS_MAX_AUDIO_SECONDS)
    assert probe_audio(path, 0) is None  # no limit: nothing to measure against


def test_a_header_that_understates_the_length_is_caught_while_decoding(tmp_path: Path) -> None:
    case = next(c for c in CORPUS if c.name == "silent_webm_declaring_5_s")
    path = tmp_path / "short.webm"
    path.write_bytes(case.make(tmp_path))
    assert probe_audio(path, CORPUS_MAX_AUDIO_SECONDS) == pytest.approx(5.0)  # it says 5 s
    with pytest.raises(InvalidInput, match="longer than the limit of 60 s"):
        decode_all(path, max_seconds=CORPUS_MAX_AUDIO_SECONDS)


# --- any WAV header -------------------------------------------------------------------------------------------------

HEADER_MAX_SECONDS = 30.0
data_sizes = st.one_of(st.none(), st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 0xFFFFFFFF]))


@st.composite
def wav_files(draw: st.DrawFn) -> bytes:
    """Any combination of channels 0-65535, rate 0-2^32-1, bits 0-64, format tag and data size, over up to 64 KB of
    samples (noise or silence)."""
    tag = draw(st.one_of(st.sampled_from([PCM, FLOAT, 0x0006, 0x0007, 0x0011, 0x0055]), st.integers(0, 0xFFFF)))
    extensible = draw(st.booleans()) if tag in (PCM, FLOAT) else tag == EXTENSIBLE
    length = draw(st.integers(0, 64 * 1024))
    seed = draw(st.integers(0, 2**16))
    data = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes() if seed % 4 else bytes(length)
    return wav_bytes(
        data,
        channels=draw(st.one_of(st.integers(0, 65535), st.integers(0, 70))),
        rate=draw(st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([2, 3999, 4000, 8000, 16000, 768_000]))),
        bits=draw(st.one_of(st.integers(0, 64), st.sampled_from([8, 16, 24, 32, 64]))),
        tag=PCM if tag == EXTENSIBLE else tag,
        extensible=extensible,
        data_size=draw(data_sizes),
        riff_size=draw(data_sizes),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=wav_files())
def test_any_wav_header_decodes_or_is_refused_in_bounded_work(data: bytes, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("header") / "any.wav"
    path.write_bytes(data)
    try:
        audio = decode_like_the_server(path, HEADER_MAX_SECONDS)
    except InvalidInput as refusal:
        assert refusal.about == "audio" and refusal.code
        return
    # bounded work: never more audio than the limit, whatever the header claims; and usable samples
    assert audio.size <= HEADER_MAX_SECONDS * 16000
    assert np.isfinite(audio).all() and np.abs(audio).max(initial=0.0) <= 1.0


# --- through the real server ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"MAX_AUDIO_SECONDS": str(CORPUS_MAX_AUDIO_SECONDS)}
    with tiny_server(tmp_path_factory.mktemp("corpus-server"), **env) as server:
        yield server


def post(server: ServerProcess, data: bytes, name: str = "input.wav") -> httpx.Response:
    files = {"file": (name, data, "application/octet-stream")}
    return httpx.post(f"{server.url}/v1/audio/transcriptions", files=files, data={"model": "whisper-1"}, timeout=120)


@pytest.mark.slow
def test_the_server_answers_the_whole_corpus_with_transcripts_or_400s(
    corpus_server: ServerProcess, tmp_path: Path
) -> None:
    statuses: dict[str, int] = {}
    wrong: list[str] = []
    for case in CORPUS:
        response = post(corpus_server, case.make(tmp_path))
        statuses[case.name] = response.status_code
        if response.status_code == 200:
            text = response.json()["text"]
            if case.expect == "refused" or (case.expect == "speech" and not sounds_like_speech(text)):
                wrong.append(f"{case.name}: 200 {text!r}")
        elif response.status_code == 400:
            error = response.json()["error"]
            assert set(error) == ERROR_KEYS and error["type"] == "invalid_request_error" and error["param"] == "file"
            if case.expect == "speech" or (case.code is not None and error["code"] != case.code):
                wrong.append(f"{case.name}: 400 {error['code']} {error['message']}")
        else:
            wrong.append(f"{case.name}: {response.status_code} {response.text[:200]}")
    assert wrong == [], wrong
    assert 500 not in statuses.values()
    assert corpus_server.temp_entries() == []
    assert httpx.get(f"{corpus_server.url}/health").json()["status"] == "ok"
    assert "Traceback" not in corpus_server.log()


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=wav_files())
def test_the_server_answers_any_wav_header_with_200_or_4xx(corpus_server: ServerProcess, data: bytes) -> None:
    response = post(corpus_server, data)
    assert response.status_code == 200 or 400 <= response.status_code < 500, response.text[:300]
    if response.status_code != 200:
        assert set(response.json()["error"]) == ERROR_KEYS
    assert corpus_server.temp_entries() == []
