"""Flaky clients (issue 14): stalled uploads time out with 408 and hold no queue slot; uploads in progress are capped
apart; retried requests resume their running job; a real hang-up still frees the worker."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from openai import OpenAI

from tests.audio_factory import read_wav, write_wav
from tests.server import ServerProcess, static_files, tiny_server

IDLE_TIMEOUT = 3.0
GRACE = 5.0
JOB_SECONDS = 12.0  # a job that outlasts the SDK's 4 s time-out three times, and ends well within its retries


@pytest.fixture(scope="module")
def flaky_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "MAX_QUEUE": "2",
        "UPLOAD_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT),
        "RESUME_GRACE_SECONDS": str(GRACE),
        "ALLOW_PRIVATE_URLS": "true",  # Reflector's URL route fetches from the test's static server
        "BATCH_SIZE": "1",  # a batch is one chunk (<= 30 s of audio): "grace + one batch" is short and measurable
    }
    with tiny_server(tmp_path_factory.mktemp("flaky-server"), **env) as server:
        yield server


def queue(server: ServerProcess) -> dict[str, int]:
    result: dict[str, int] = httpx.get(f"{server.url}/health").json()["queue"]
    return result


def metric(server: ServerProcess, name: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def stalled_upload(server: ServerProcess, wav: bytes) -> socket.socket:
    """A raw connection that sends the headers and the first 4 KB of a multipart upload, then stops."""
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    head = (
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(part) + len(wav) + 8}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(head.encode() + part + wav[:4096])
    return sock


def stalled_json(server: ServerProcess) -> socket.socket:
    """A raw connection that sends half of a JSON body to Reflector's URL route, then stops."""
    body = b'{"audio_file_url": "http://127.0.0.1/a.wav"}'
    head = (
        "POST /v1/audio/transcriptions-from-url HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(head.encode() + body[:10])
    return sock


def read_response(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_stalled_uploads_hold_no_slot_and_end_with_408(flaky_server: ServerProcess, audio_dir: Path) -> None:
    wav = (audio_dir / "beckett.wav").read_bytes()
    timeouts_before = metric(flaky_server, "stt_upload_timeouts_total")
    started = time.monotonic()
    stalled = [stalled_upload(flaky_server, wav) for _ in range(4)]  # twice MAX_QUEUE=2
    stalled.append(stalled_json(flaky_server))  # a JSON body stalls the same way
    try:
        wait_for(lambda: queue(flaky_server)["uploading"] == 5, 10, "the stalled uploads were not seen")
        assert metric(flaky_server, "stt_uploads_in_progress") == 5
        files = {"file": ("beckett.wav", wav, "audio/wav")}
        served = httpx.post(f"{flaky_server.url}/v1/audio/transcriptions", files=files, timeout=60)
        assert served.status_code == 200, served.text
        assert "better" in served.json()["text"].lower()
        for sock in stalled:
            raw = read_response(sock, timeout=IDLE_TIMEOUT + 10)
            head, _, body = raw.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 "), raw[:200]
            error = json.loads(body)["error"]
            assert set(error) == {"message", "type", "param", "code"} and error["code"] == "upload_timeout"
        assert time.monotonic() - started >= IDLE_TIMEOUT
    finally:
        for sock in stalled:
            sock.close()
    wait_for(lambda: queue(flaky_server)["uploading"] == 0, 5, "upload slots were not released")
    assert queue(flaky_server)["admitted"] == 0
    assert flaky_server.temp_entries() == []
    assert metric(flaky_server, "stt_upload_timeouts_total") == timeouts_before + 5
    assert "Traceback" not in flaky_server.log()


def test_a_slow_but_moving_upload_goes_on(flaky_server: ServerProcess, audio_dir: Path) -> None:
    wav = (audio_dir / "beckett.wav").read_bytes()
    piece = len(wav) // 3 + 1

    def body() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for i in range(0, len(wav), piece):
            time.sleep(IDLE_TIMEOUT * 0.6)  # the whole upload takes longer than the idle timeout
            yield wav[i : i + piece]
        yield b"\r\n--b--\r\n"

    started = time.monotonic()
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    response = httpx.post(f"{flaky_server.url}/v1/audio/transcriptions", content=body(), headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    assert time.monotonic() - started > IDLE_TIMEOUT


def test_uploads_in_progress_are_capped(tmp_path: Path, audio_dir: Path) -> None:
    wav = (audio_dir / "beckett.wav").read_bytes()
    with tiny_server(tmp_path, MAX_QUEUE="1", MAX_UPLOADS="2", UPLOAD_IDLE_TIMEOUT_SECONDS="30") as server:
        stalled = [stalled_upload(server, wav) for _ in range(2)]
        try:
            wait_for(lambda: queue(server)["uploading"] == 2, 10, "the stalled uploads were not seen")
            files = {"file": ("beckett.wav", wav, "audio/wav")}
            refused = httpx.post(f"{server.url}/v1/audio/transcriptions", files=files, timeout=60)
            assert refused.status_code == 503 and "MAX_UPLOADS" in refused.json()["error"]["message"]
            assert int(refused.headers["retry-after"]) > 0
        finally:
            for sock in stalled:
                sock.close()
        wait_for(lambda: queue(server)["uploading"] == 0, 10, "a hang-up mid-upload kept its slot")
        time.sleep(0.2)
        assert server.temp_entries() == []


def speech(audio_dir: Path, seconds: float, path: Path) -> Path:
    """`seconds` of real speech at 16 kHz (two_cities.wav repeated)."""
    data, rate = read_wav(audio_dir / "two_cities.wav")
    unit = np.concatenate([data[:: rate // 16000], np.zeros(16000 // 2, dtype=np.float32)])
    samples = np.tile(unit, int(np.ceil(seconds * 16000 / len(unit))))[: int(seconds * 16000)]
    return write_wav(path, samples, 16000)


class Speed:
    """This machine, as measured by `long_wav` on a 60 s probe: how fast the server transcribes, and how much text
    the speech gives (the transcripts of `long_wav` are checked against what its length should give)."""

    seconds_per_audio_second = 0.0
    chars_per_audio_second = 0.0


def as_long_as_the_audio(text: str, path: Path) -> bool:
    """`text` is a transcript of all of `path` (at least 90 % of the text its length gives at the probe's rate)."""
    seconds, rate = len(read_wav(path)[0]) / 16000, Speed.chars_per_audio_second
    return len(text) >= 0.9 * rate * seconds


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory: pytest.TempPathFactory, audio_dir: Path, flaky_server: ServerProcess) -> Path:
    """Speech that takes the server about JOB_SECONDS to transcribe, sized by timing a short file first (the test
    machine is shared: its speed varies several-fold)."""
    folder = tmp_path_factory.mktemp("long")
    probe = speech(audio_dir, 60.0, folder / "probe.wav")
    started = time.monotonic()
    with open(probe, "rb") as f:
        files = {"file": ("probe.wav", f, "audio/wav")}
        answer = httpx.post(f"{flaky_server.url}/v1/audio/transcriptions", files=files, timeout=120)
    assert answer.status_code == 200, answer.text
    Speed.seconds_per_audio_second = (time.monotonic() - started) / 60.0
    Speed.chars_per_audio_second = len(answer.json()["text"]) / 60.0
    seconds = min(max(JOB_SECONDS / Speed.seconds_per_audio_second, 60.0), 600.0)
    return speech(audio_dir, seconds, folder / "long.wav")


def request_lines(server: ServerProcess) -> list[str]:
    return [line for line in server.log().splitlines() if " request " in line and "audio/transcriptions" in line]


def test_sdk_retries_resume_the_running_job(flaky_server: ServerProcess, long_wav: Path) -> None:
    resumed_before = metric(flaky_server, "stt_resumed_requests_total")
    cancelled_before = metric(flaky_server, "stt_cancelled_total")
    lines_before = len(request_lines(flaky_server))
    # JOB_SECONDS by the probe's measure is 3 time-outs; 8 retries (about 70 s of patience with the SDK's back-off)
    # leave room for the machine to slow down several-fold meanwhile (a busy neighbour); what is tested is the same
    client = OpenAI(base_url=f"{flaky_server.url}/v1", api_key="unused", timeout=4.0, max_retries=8)
    started = time.monotonic()
    with open(long_wav, "rb") as f:
        retried = client.audio.transcriptions.create(file=f, model="whisper-1")
    with_retries = time.monotonic() - started

    # the log line follows the response
    wait_for(lambda: "status=200" in request_lines(flaky_server)[-1], 5, "no log line for the answer")
    lines = request_lines(flaky_server)[lines_before:]
    resumed = metric(flaky_server, "stt_resumed_requests_total") - resumed_before
    assert resumed >= 1, lines  # at least one retry attached to the job
    assert [line for line in lines if "status=200" in line] == [lines[-1]] and "resumed=True" in lines[-1]
    assert len([line for line in lines if "status=499" in line]) == resumed  # every time-out was retried, resumed
    assert metric(flaky_server, "stt_cancelled_total") == cancelled_before  # nothing was cancelled or run again

    started = time.monotonic()
    with open(long_wav, "rb") as f:
        files = {"file": ("long.wav", f, "audio/wav")}
        single = httpx.post(f"{flaky_server.url}/v1/audio/transcriptions", files=files, timeout=120)
    uninterrupted = time.monotonic() - started
    assert single.status_code == 200, single.text
    assert retried.text == single.json()["text"] and as_long_as_the_audio(retried.text, long_wav)
    print(f"\nwith 4 s time-outs and retries: {with_retries:.1f} s; uninterrupted: {uninterrupted:.1f} s")
    assert flaky_server.temp_entries() == []


def test_a_streamed_retry_first_receives_what_was_produced(flaky_server: ServerProcess, long_wav: Path) -> None:
    url = f"{flaky_server.url}/v1/audio/transcriptions"
    form = {"model": "whisper-1", "stream": "true"}
    wav = long_wav.read_bytes()
    first: list[str] = []
    with httpx.stream("POST", url, files={"file": ("long.wav", wav)}, data=form, timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                first.append(line)
            if len(first) == 2:
                break  # hang up after two deltas
    resumed_before = metric(flaky_server, "stt_resumed_requests_total")
    again: list[str] = []
    with httpx.stream("POST", url, files={"file": ("long.wav", wav)}, data=form, timeout=60) as response:
        again = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert metric(flaky_server, "stt_resumed_requests_total") == resumed_before + 1
    assert again[:2] == first and again[-1] == "data: [DONE]"
    done = json.loads(again[-2][len("data: ") :])
    deltas = [json.loads(line[len("data: ") :])["delta"] for line in again[:-2]]
    assert done["type"] == "transcript.text.done" and "".join(deltas) == done["text"]
    assert as_long_as_the_audio(done["text"], long_wav)
    wait_for(lambda: queue(flaky_server)["admitted"] == 0, 10, "the streamed job kept its slot")


def test_reflector_url_retry_resumes_its_job(flaky_server: ServerProcess, long_wav: Path) -> None:
    with static_files(long_wav.parent) as base:
        body = {"audio_file_url": f"{base}/{long_wav.name}", "timestamp_offset": 0.0}
        url = f"{flaky_server.url}/v1/audio/transcriptions-from-url"
        resumed_before = metric(flaky_server, "stt_resumed_requests_total")
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url, json=body, timeout=httpx.Timeout(60, read=3))
        answer = httpx.post(url, json={**body, "timestamp_offset": 10.0}, timeout=120)
    assert answer.status_code == 200, answer.text
    assert metric(flaky_server, "stt_resumed_requests_total") == resumed_before + 1
    words = answer.json()["words"]
    assert len(words) > 100 and words[0]["start"] >= 10.0


def test_a_hang_up_without_retry_frees_the_worker(flaky_server: ServerProcess, long_wav: Path) -> None:
    cancelled_before = metric(flaky_server, "stt_cancelled_total")
    with open(long_wav, "rb") as f, pytest.raises(httpx.ReadTimeout):
        files = {"file": ("long.wav", f, "audio/wav")}
        httpx.post(f"{flaky_server.url}/v1/audio/transcriptions", files=files, timeout=httpx.Timeout(60, read=1))
    hung_up = time.monotonic()
    time.sleep(GRACE / 2)
    assert queue(flaky_server)["running"] == 1  # kept running for its retry
    wait_for(lambda: queue(flaky_server)["admitted"] == 0, GRACE + 10, "the worker was not freed")
    freed_after = time.monotonic() - hung_up
    batch = 30.0 * Speed.seconds_per_audio_second + 1.0  # one batch: one chunk of at most 30 s, with margin
    assert GRACE - 0.5 <= freed_after <= GRACE + batch, freed_after
    assert queue(flaky_server)["running"] == 0
    assert metric(flaky_server, "stt_cancelled_total") == cancelled_before + 1
    time.sleep(0.2)
    assert flaky_server.temp_entries() == []


def test_a_client_that_never_retries_cancels_at_once(flaky_server: ServerProcess, long_wav: Path) -> None:
    url = f"{flaky_server.url}/v1/audio/transcriptions"
    files = {"file": ("long.wav", long_wav.read_bytes(), "audio/wav")}
    bad = httpx.post(url, files=files, headers={"X-Resume-Grace": "soon"}, timeout=60)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "X-Resume-Grace"
    cancelled_before = metric(flaky_server, "stt_cancelled_total")
    with pytest.raises(httpx.ReadTimeout):  # the page at / sends X-Resume-Grace: 0 (its Cancel is deliberate)
        httpx.post(url, files=files, headers={"X-Resume-Grace": "0"}, timeout=httpx.Timeout(60, read=1))
    hung_up = time.monotonic()
    wait_for(lambda: queue(flaky_server)["admitted"] == 0, GRACE + 10, "the worker was not freed")
    assert time.monotonic() - hung_up <= 30.0 * Speed.seconds_per_audio_second + 1.0  # one batch, no grace
    assert metric(flaky_server, "stt_cancelled_total") == cancelled_before + 1


def test_a_diarized_retry_resumes_with_its_speakers(flaky_server: ServerProcess, long_wav: Path) -> None:
    """diarized_json goes the one way too: its speaker step is part of the shared work, so a retried stream gets
    what was produced, then the segments by speaker, and the upload is removed only once they are done."""
    url = f"{flaky_server.url}/v1/audio/transcriptions"
    form = {"model": "whisper-1", "stream": "true", "response_format": "diarized_json"}
    wav = long_wav.read_bytes()
    first: list[str] = []
    with httpx.stream("POST", url, files={"file": ("long.wav", wav)}, data=form, timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                first.append(line)
            if len(first) == 1:
                break  # hang up after the first delta
    resumed_before = metric(flaky_server, "stt_resumed_requests_total")
    with httpx.stream("POST", url, files={"file": ("long.wav", wav)}, data=form, timeout=120) as response:
        again = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert metric(flaky_server, "stt_resumed_requests_total") == resumed_before + 1
    assert again[:1] == first and again[-1] == "data: [DONE]"
    events = [json.loads(line[len("data: ") :]) for line in again[:-1]]
    speakers = [e for e in events if e["type"] == "transcript.text.segment"]
    assert speakers and all(e["speaker"] for e in speakers)  # every segment by speaker has its label
    assert events[-1]["type"] == "transcript.text.done"
    wait_for(lambda: queue(flaky_server)["admitted"] == 0, 10, "the diarized job kept its slot")
    assert flaky_server.temp_entries() == []
