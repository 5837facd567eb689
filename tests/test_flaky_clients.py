"""Flaky clients (issue 14): stalled uploads time out with 408 and hold no queue slot; uploads in progress are capped
apart; retried requests resume their running job; a real hang-up still frees the worker."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import ServerProcess, tiny_server

IDLE_TIMEOUT = 3.0
GRACE = 5.0


@pytest.fixture(scope="module")
def flaky_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "MAX_QUEUE": "2",
        "UPLOAD_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT),
        "RESUME_GRACE_SECONDS": str(GRACE),
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
    try:
        wait_for(lambda: queue(flaky_server)["uploading"] == 4, 10, "the stalled uploads were not seen")
        assert metric(flaky_server, "stt_uploads_in_progress") == 4
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
    assert metric(flaky_server, "stt_upload_timeouts_total") == timeouts_before + 4
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
