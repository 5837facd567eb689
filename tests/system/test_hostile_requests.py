"""Hostile and careless clients at the HTTP level (issue 26): a boundary the parser cannot use, a full disk, an endless
header, trickling uploads, dripping audio URLs, hung-up jobs in the way of waiting ones, and SIGTERM in the middle
of long jobs. Each is answered in OpenAI's error shape (or not at all, for a header past the cap), leaves no temp
file, and leaves the server serving."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from app.server import create_app
from app.settings import load_settings
from tests.audio_factory import tiled_wav
from tests.server import AUDIO, ServerProcess, tiny_server

ERROR_KEYS = {"message", "type", "param", "code"}


def metric(server: ServerProcess, name: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def queue(server: ServerProcess) -> dict[str, int]:
    result: dict[str, int] = httpx.get(f"{server.url}/health").json()["queue"]
    return result


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def error_of(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS
    return dict(error)


def upload(server: ServerProcess, path: Path, timeout: float | httpx.Timeout = 120) -> httpx.Response:
    files = {"file": (path.name, path.read_bytes(), "audio/wav")}
    return httpx.post(f"{server.url}/v1/audio/transcriptions", files=files, timeout=timeout)


# --- a multipart boundary the parser cannot use ------------------------------------------------------------------


def test_a_boundary_longer_than_the_parser_takes_is_a_400_and_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the app's temp root
    env = {"MODEL": "tiny.en", "ALLOWED_MODELS": "tiny.en", "LOAD_MODEL_ON_STARTUP": "false"}
    boundary = "b" * 300
    part = 'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF'
    body = f"--{boundary}\r\n{part}\r\n--{boundary}--\r\n"
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    with TestClient(create_app(load_settings({**env, "MODELS_DIR": str(tmp_path / "m")}, dotenv=None))) as client:
        for _ in range(3):
            response = client.post("/v1/audio/transcriptions", content=body.encode(), headers=headers)
            error = response.json()["error"]
            assert response.status_code == 400 and set(error) == ERROR_KEYS
            assert "boundary" in error["message"] and "256" in error["message"]
        assert list((tmp_path / "stt-appliance").iterdir()) == []  # no req-* folder per request


# --- a full disk -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (root, or password-less sudo), unmounted afterwards."""
    path.mkdir()
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run([*sudo, "mount", "-t", "tmpfs", "-o", f"size={size},mode=1777", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run([*sudo, "umount", "-l", str(path)], check=True)


@pytest.mark.slow
def test_a_full_disk_is_a_507_that_says_so_and_the_server_goes_on(tmp_path: Path) -> None:
    big = tiled_wav(AUDIO / "beckett.wav", tmp_path / "big.wav", 660)  # 21 MB
    with small_tmpfs(tmp_path / "small", "5m") as small, tiny_server(tmp_path, TMPDIR=str(small)) as server:
        for _ in range(2):
            error = error_of(upload(server, big), 507)
            assert error["type"] == "server_error" and error["code"] == "storage_full"
            assert "storage is full" in str(error["message"])
        refused = upload(server, big)
        assert int(refused.headers["retry-after"]) > 0
        assert server.temp_entries() == []  # the partial upload went with its folder
        served = upload(server, AUDIO / "beckett.wav")  # 320 kB: fits
        assert served.status_code == 200 and "fail" in served.json()["text"].lower()
        assert "Traceback" not in server.log() and "OSError" not in server.log()


# --- an endless header ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with tiny_server(tmp_path_factory.mktemp("plain-server")) as server:
        yield server


def test_a_250_mb_header_is_cut_off_and_health_stays_quick(plain_server: ServerProcess) -> None:
    sent = 0
    with socket.create_connection(("127.0.0.1", plain_server.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk = b"a" * (1 << 20)
        with contextlib.suppress(ConnectionError):  # the server hangs up on it
            while sent < 250 << 20:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
    assert sent < 16 << 20, f"the server read {sent >> 20} MB of one header"
    assert httpx.get(f"{plain_server.url}/health", timeout=5).status_code == 200
    # headers of a normal size still pass: a long cookie, a long key
    response = httpx.get(f"{plain_server.url}/health", headers={"X-Long": "a" * 32_000}, timeout=5)
    assert response.status_code == 200


# --- trickling uploads, dripping audio URLs ----------------------------------------------------------------------

WINDOW = 2.0  # UPLOAD_IDLE_TIMEOUT_SECONDS of these servers
MIN_RATE = 2000  # UPLOAD_MIN_BYTES_PER_SECOND


def trickle(server: ServerProcess, stop: threading.Event, every: float) -> bytes:
    """An upload that sends one byte every `every` seconds (fewer than MIN_RATE, more often than WINDOW) until the
    server answers (or `stop`); returns the raw answer (b"" if none came)."""
    head = (
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        "Content-Length: 100000\r\n\r\n"
    )
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    answer = b""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head.encode() + part)
        sock.settimeout(every)
        while not stop.is_set() and not answer:
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                with contextlib.suppress(ConnectionError):  # hung up on: its answer is still to be read
                    sock.sendall(b"x")
            except ConnectionError:
                return answer
        # the rest of the answer: the server closes after a 408, or (keep-alive) we stop once it has paused
        sock.settimeout(2)
        with contextlib.suppress(TimeoutError, ConnectionError):
            while answer and (chunk := sock.recv(65536)):
                answer += chunk
    return answer


@pytest.fixture(scope="module")
def paced_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "MAX_UPLOADS": "3",
        "MAX_QUEUE": "1",
        "UPLOAD_IDLE_TIMEOUT_SECONDS": str(WINDOW),
        "UPLOAD_MIN_BYTES_PER_SECOND": str(MIN_RATE),
        "ALLOW_PRIVATE_URLS": "true",
    }
    with tiny_server(tmp_path_factory.mktemp("paced-server"), **env) as server:
        yield server


def test_trickling_uploads_are_dropped_and_free_their_slots(paced_server: ServerProcess) -> None:
    stop = threading.Event()
    answers: list[bytes] = []
    tricklers = [
        threading.Thread(target=lambda: answers.append(trickle(paced_server, stop, WINDOW / 4))) for _ in range(3)
    ]
    for thread in tricklers:
        thread.start()
    try:
        wait_for(lambda: queue(paced_server)["uploading"] == 3, 10, "the trickling uploads were not seen")
        # every upload slot is taken: another upload is refused for now
        busy = upload(paced_server, AUDIO / "beckett.wav")
        assert busy.status_code == 503 and "MAX_UPLOADS" in busy.json()["error"]["message"]
        wait_for(lambda: len(answers) == 3, 20 * WINDOW, "a trickling upload kept its slot")
    finally:
        stop.set()
        for thread in tricklers:
            thread.join()
    for raw in answers:
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), raw[:200]
        error = json.loads(body)["error"]
        assert error["code"] == "upload_timeout" and "UPLOAD_MIN_BYTES_PER_SECOND" in error["message"]
    wait_for(lambda: queue(paced_server)["uploading"] == 0, 5, "the slots were not given back")
    served = upload(paced_server, AUDIO / "beckett.wav")
    assert served.status_code == 200, served.text
    assert paced_server.temp_entries() == []


class DrippingSource:
    """An HTTP server whose audio comes one byte every `every` seconds (a hostile or broken audio_file_url)."""

    def __init__(self, every: float) -> None:
        self.stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                with contextlib.suppress(OSError):
                    while not outer.stop.wait(every):
                        self.wfile.write(b"R")
                        self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/drip.wav"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_url_downloads_hold_no_queue_slot_and_a_dripping_source_is_dropped(paced_server: ServerProcess) -> None:
    source = DrippingSource(every=WINDOW / 4)
    answers: list[httpx.Response] = []

    def from_url() -> None:
        body = {"audio_file_url": source.url}
        url = f"{paced_server.url}/v1/audio/transcriptions-from-url"
        answers.append(httpx.post(url, json=body, timeout=60))

    downloads = [threading.Thread(target=from_url) for _ in range(2)]
    try:
        for thread in downloads:
            thread.start()
        wait_for(lambda: queue(paced_server)["uploading"] == 2, 10, "the downloads were not seen")
        assert queue(paced_server)["admitted"] == 0
        # MAX_QUEUE=1: the only queue slot is free for an upload ready to run
        served = upload(paced_server, AUDIO / "beckett.wav")
        assert served.status_code == 200, served.text
        for thread in downloads:
            thread.join()
    finally:
        source.close()
    for answer in answers:
        error = error_of(answer, 504)
        assert error["param"] == "audio_file_url" and "too slowly" in str(error["message"])
    wait_for(lambda: queue(paced_server)["uploading"] == 0, 5, "the downloads kept their slots")
    assert paced_server.temp_entries() == []


# --- hung-up jobs never hold up waiting ones -----------------------------------------------------------------------


@pytest.mark.slow
def test_hung_up_jobs_give_way_to_a_new_request(tmp_path: Path) -> None:
    # two different long files (the same one again would be a retry, attaching to the first job)
    first, second = (tiled_wav(AUDIO / "beckett.wav", tmp_path / f"long{s}.wav", s) for s in (180, 181))
    env = {"RESUME_GRACE_SECONDS": "600", "BATCH_SIZE": "1", "MAX_QUEUE": "4"}
    with tiny_server(tmp_path, **env) as server:
        cancelled = metric(server, "stt_cancelled_total")

        def hang_up(path: Path) -> None:  # a long request whose client gives up; its job may wait 600 s for a retry
            with pytest.raises(httpx.ReadTimeout):
                upload(server, path, timeout=httpx.Timeout(60, read=1))

        hang_up(first)
        wait_for(lambda: queue(server)["running"] == 1, 10, "the first job is not running")
        assert metric(server, "stt_cancelled_total") == cancelled  # alone, it keeps its grace
        hang_up(second)  # the second one, admitted, cancels the first at its next batch boundary ...
        assert metric(server, "stt_cancelled_total") == cancelled + 1
        wait_for(lambda: queue(server)["admitted"] == 1, 30, "the first job did not stop")
        short = upload(server, AUDIO / "beckett.wav")  # ... and a new one, the second
        assert short.status_code == 200 and "fail" in short.json()["text"].lower()
        # by the time the short answer came, both hung-up jobs had been cancelled: it did not wait for them
        assert metric(server, "stt_cancelled_total") == cancelled + 2
        server.wait_until_idle()
        assert server.temp_entries() == []


# --- SIGTERM during long jobs --------------------------------------------------------------------------------------

DOCKER_GRACE_SECONDS = 10.0  # `docker stop` kills after this long


@pytest.mark.slow
def test_sigterm_answers_jobs_in_progress_and_exits_within_dockers_grace(tmp_path: Path) -> None:
    long = tiled_wav(AUDIO / "beckett.wav", tmp_path / "long.wav", 600)
    answers: dict[str, object] = {}
    with tiny_server(tmp_path, BATCH_SIZE="1") as server:

        def plain() -> None:
            answers["plain"] = upload(server, long, timeout=60)

        def streamed() -> None:
            events: list[dict[str, object]] = []
            files = {"file": ("long.wav", long.read_bytes(), "audio/wav")}
            url = f"{server.url}/v1/audio/transcriptions"
            with httpx.stream("POST", url, files=files, data={"stream": "true"}, timeout=60) as response:
                events.extend(json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {"))
            answers["stream"] = events

        clients = [threading.Thread(target=plain), threading.Thread(target=streamed)]
        for thread in clients:
            thread.start()
        wait_for(lambda: queue(server)["admitted"] == 2 and queue(server)["running"] == 1, 30, "jobs not running")
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=DOCKER_GRACE_SECONDS)
        exited_after = time.monotonic() - signalled
        for thread in clients:
            thread.join()
        log = server.log()
    plain_answer = answers["plain"]
    assert isinstance(plain_answer, httpx.Response)
    error = error_of(plain_answer, 503)
    assert error["code"] == "shutting_down" and int(plain_answer.headers["retry-after"]) > 0
    events = answers["stream"]
    assert isinstance(events, list) and events[-1]["type"] == "error"
    assert events[-1]["error"]["code"] == "shutting_down"  # type: ignore[index]
    assert exited_after < DOCKER_GRACE_SECONDS
    assert "Traceback" not in log and "CancelledError" not in log
    assert list((tmp_path / "tmp" / "stt-appliance").iterdir()) == []
    print(f"\nexited {exited_after:.2f} s after SIGTERM")
