"""Start the real server (`python -m app`) in a subprocess for end-to-end tests."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "tests" / "data"  # real speech carried by the repository (see tests/data/README.md)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A running `python -m app` with the given settings; `url` is its base URL."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        log_path: Path,
        wrapper: list[str] | None = None,
        python: str = sys.executable,
        command: list[str] | None = None,
        cwd: Path = ROOT,
        base_env: Mapping[str, str] = os.environ,
    ) -> None:
        """`command` (default: `python -m app`) runs in `cwd` with `base_env` (default: this process's environment)
        and `env` over it."""
        self.port = free_port()
        # TLS (TLS_CERT_FILE or TLS=self-signed): https; the helpers' own polling does not check the certificate
        self.https = bool(env.get("TLS_CERT_FILE")) or env.get("TLS") == "self-signed"
        self.url = f"{'https' if self.https else 'http'}://127.0.0.1:{self.port}"
        full_env = {
            **base_env,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "NUM_THREADS": "2",
            "LOG_LEVEL": "INFO",
            **env,
        }
        self.log_path = log_path
        self.env = env
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*(wrapper or []), *(command or [python, "-m", "app"])],
            cwd=cwd,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that stop() reaches a wrapped server too
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1, verify=not self.https).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log()}")

    @property
    def temp_dir(self) -> Path:
        """Where the server keeps request files (under the TMPDIR it was given)."""
        return Path(self.env["TMPDIR"]) / "stt-appliance"

    def temp_entries(self) -> list[Path]:
        return list(self.temp_dir.iterdir()) if self.temp_dir.exists() else []

    def wait_until_idle(self, timeout: float = 60.0) -> None:
        """Until nothing is queued or running (a cancelled job stops at its next batch boundary)."""
        deadline = time.monotonic() + timeout
        while True:
            queue = httpx.get(f"{self.url}/health", verify=not self.https).json()["queue"]
            if queue["admitted"] == 0 and queue["running"] == 0:
                return
            assert time.monotonic() < deadline, f"worker still busy: {queue}"
            time.sleep(0.1)

    def request_lines(self, route: str) -> list[str]:
        marks = (f"route={route}", f'"route": "{route}"')  # console or JSON (LOG_JSON) renderer
        return [x for x in self.log().splitlines() if any(m in x for m in marks)]

    def next_request_line(self, route: str, seen: int, timeout: float = 10.0) -> str:
        """The first request log line for `route` after the `seen` ones there were. The middleware writes it after
        the response has gone out, so a test that reads the log right after an answer waits for it."""
        deadline = time.monotonic() + timeout
        while len(lines := self.request_lines(route)) <= seen:
            assert time.monotonic() < deadline, f"no new request line for {route}"
            time.sleep(0.05)
        return lines[seen]

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Ctrl-C to the server's whole process group: a wrapper such as strace would otherwise detach and leave the
        server running."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the group (the traced server)
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


@contextlib.contextmanager
def tiny_server(
    tmp: Path, *, wrapper: list[str] | None = None, python: str = sys.executable, **env: str
) -> Iterator[ServerProcess]:
    """`python -m app` with the bundled Whisper tiny.en and its own MODELS_DIR and TMPDIR under `tmp`; `env` adds
    or overrides settings; `wrapper` runs the server under another command (e.g. strace), `python` in another venv."""
    (tmp / "tmp").mkdir(exist_ok=True)
    base = {
        "MODEL": "tiny.en",
        "ALLOWED_MODELS": "tiny.en",
        "MODELS_DIR": str(tmp / "models"),
        "TMPDIR": str(tmp / "tmp"),
    }
    server = ServerProcess({**base, **env}, log_path=tmp / "server.log", wrapper=wrapper, python=python)
    try:
        yield server
    finally:
        server.stop()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def static_files(directory: Path) -> Iterator[str]:
    """A static file server on 127.0.0.1 over `directory` (for audio_file_url requests); yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
