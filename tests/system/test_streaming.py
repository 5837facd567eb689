"""SSE streaming under real conditions: keep-alives while the engine works, hang-ups that free the worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.audio_factory import tiled
from tests.server import ServerProcess, tiny_server


@pytest.fixture(scope="module")
def stream_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # RESUME_GRACE_SECONDS=0: a hang-up cancels at once (waiting for a retry is tested in test_flaky_clients.py)
    env = {"KEEPALIVE_SECONDS": "0.2", "BATCH_SIZE": "1", "RESUME_GRACE_SECONDS": "0"}
    with tiny_server(tmp_path_factory.mktemp("stream-server"), **env) as server:
        yield server


@pytest.fixture(scope="module")
def long_file(audio_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiled(audio_dir / "two_cities.wav", 180.0, tmp_path_factory.mktemp("long") / "three_minutes.wav")


def events_of(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        if line:
            yield line


def test_keepalive_comments_flow_while_the_engine_works(stream_server: ServerProcess, audio_dir: Path) -> None:
    files = {"file": ("two_cities.wav", (audio_dir / "two_cities.wav").read_bytes(), "audio/wav")}
    with httpx.stream(
        "POST", f"{stream_server.url}/v1/audio/transcriptions", files=files, data={"stream": "true"}, timeout=120
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = list(events_of(response.iter_lines()))
    assert ": keep-alive" in lines
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    deltas = [e["delta"] for e in events if e["type"] == "transcript.text.delta"]
    assert "".join(deltas) == events[-1]["text"] and events[-1]["type"] == "transcript.text.done"


def test_segment_events_carry_timings_for_subtitle_streams(stream_server: ServerProcess, audio_dir: Path) -> None:
    files = {"file": ("beckett.wav", (audio_dir / "beckett.wav").read_bytes(), "audio/wav")}
    data = {"stream": "true", "response_format": "srt"}
    with httpx.stream(
        "POST", f"{stream_server.url}/v1/audio/transcriptions", files=files, data=data, timeout=120
    ) as response:
        payloads = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    events = [json.loads(p) for p in payloads[:-1]]
    segments = [e for e in events if e["type"] == "transcript.text.segment"]
    assert segments and all(0 <= s["start"] < s["end"] <= 10.0 for s in segments)
    # the live timings are the synchronous answer's segments, not an approximation of them
    synchronous = httpx.post(
        f"{stream_server.url}/v1/audio/transcriptions",
        files=files,
        data={"response_format": "verbose_json"},
        timeout=120,
    ).json()["segments"]
    assert [(s["start"], s["end"], s["text"]) for s in segments] == [
        (s["start"], s["end"], s["text"]) for s in synchronous
    ]
    assert " ".join(s["text"] for s in segments) == events[-1]["text"]


def test_hanging_up_a_stream_cancels_the_job(stream_server: ServerProcess, long_file: Path, audio_dir: Path) -> None:
    files = {"file": ("long.wav", long_file.read_bytes(), "audio/wav")}
    with httpx.stream(
        "POST", f"{stream_server.url}/v1/audio/transcriptions", files=files, data={"stream": "true"}, timeout=120
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and "transcript.text.delta" in line:
                break  # the first words arrived: now walk away
    stream_server.wait_until_idle()  # the worker stops at its next batch boundary, not after three minutes of audio
    assert stream_server.temp_entries() == []
    assert "status=499" in stream_server.log()
    # and it serves the next request
    beckett = {"file": ("beckett.wav", (audio_dir / "beckett.wav").read_bytes(), "audio/wav")}
    assert httpx.post(f"{stream_server.url}/v1/audio/transcriptions", files=beckett, timeout=60).status_code == 200


def test_hanging_up_a_plain_request_cancels_the_job(stream_server: ServerProcess, long_file: Path) -> None:
    files = {"file": ("long.wav", long_file.read_bytes(), "audio/wav")}
    before = stream_server.log().count("status=499")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{stream_server.url}/v1/audio/transcriptions", files=files, timeout=httpx.Timeout(60, read=3))
    stream_server.wait_until_idle()
    assert stream_server.temp_entries() == []
    assert stream_server.log().count("status=499") == before + 1
    assert "stt_cancelled_total 2.0" in httpx.get(f"{stream_server.url}/metrics").text


def test_a_bad_file_is_refused_before_the_stream_starts(stream_server: ServerProcess) -> None:
    files = {"file": ("x.wav", b"not audio at all" * 20, "audio/wav")}
    response = httpx.post(
        f"{stream_server.url}/v1/audio/transcriptions", files=files, data={"stream": "true"}, timeout=30
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "file"
