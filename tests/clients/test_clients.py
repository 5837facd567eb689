"""Clients that work with OpenAI work here (issue 22), installed unchanged from their registries and each making
the calls it makes by default: OpenAI's Python SDK 3.57 and JS SDK 7.59, LiteLLM 1.110, the Vercel AI SDK 7
(`experimental_transcribe` with `gpt-4o-transcribe-diarize`, `experimental_streamTranscribe` with
`gpt-transcribe`) and livekit-plugins-openai 1.8.

They run in environments of their own (tests/client_envs.py: a uv venv and an npm folder, cached between runs) as
scripts (tests/clients/), and print what they got as one JSON line. The Python clients talk to a plain http server with
the default settings (but a shorter idle limit); the JavaScript ones to a TLS=self-signed server, trusting its ca.pem
through NODE_EXTRA_CA_CERTS as README tells users (OpenAI's JS realtime client only speaks wss://).

LiveKit's STT is muted for 30 s, longer than that server's REALTIME_IDLE_TIMEOUT_S of 20 s (60 s by default), which used
to end such a session, and then has to transcribe. To keep the suite's time, it starts when the module does and runs
beside the other clients; its test collects it last.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.client_envs import CLIENTS, node_clients, python_clients
from tests.realtime_client import pcm24k
from tests.server import AUDIO, ROOT, ServerProcess, tiny_server

pytestmark = pytest.mark.slow

IDLE_TIMEOUT_SECONDS = 20.0  # REALTIME_IDLE_TIMEOUT_S of the plain server
MUTED_SECONDS = 30.0  # longer than it
TIMEOUT = 300


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with tiny_server(tmp_path_factory.mktemp("clients"), REALTIME_IDLE_TIMEOUT_S=str(IDLE_TIMEOUT_SECONDS)) as server:
        yield server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with tiny_server(tmp_path_factory.mktemp("clients-tls"), TLS="self-signed") as server:
        yield server


@pytest.fixture(scope="module")
def python() -> Path:
    return python_clients()


@pytest.fixture(scope="module")
def livekit_muted(python: Path, server: ServerProcess) -> Iterator[subprocess.Popen[str]]:
    """LiveKit's STT session, muted for MUTED_SECONDS from now, then speaking (collected by its test)."""
    command = [str(python), str(CLIENTS / "python_clients.py"), "livekit", server.url, str(AUDIO), str(MUTED_SECONDS)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def run_python(python: Path, case: str, server: ServerProcess) -> dict[str, Any]:
    command = [str(python), str(CLIENTS / "python_clients.py"), case, server.url, str(AUDIO)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.splitlines()[-1]))


def run_node(case: str, server: ServerProcess, tmp_path: Path) -> dict[str, Any]:
    folder = node_clients()
    pcm = tmp_path / "beckett.pcm"
    pcm.write_bytes(pcm24k(AUDIO / "beckett.wav", silence_after=0.5))
    ca = Path(server.env["MODELS_DIR"]) / ".tls" / "ca.pem"
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(ca), "OPENAI_API_KEY": "unused"}
    node = str(folder / "node_modules" / ".bin" / "node")  # Node.js 22, as the SDKs require, from npm's `node`
    command = [node, "js_clients.mjs", case, server.url, str(AUDIO), str(pcm)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=folder, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_livekit_session_starts_muted(livekit_muted: subprocess.Popen[str]) -> None:
    """(Starts the muted LiveKit session early: the clients below run while it waits.)"""
    assert livekit_muted.poll() is None, livekit_muted.stderr.read() if livekit_muted.stderr else ""


def test_openai_python_sdk(python: Path, server: ServerProcess) -> None:
    got = run_python(python, "openai", server)
    assert "fail better" in got["current"].lower() and got["dated"] == got["current"]
    assert got["logprobs"] > 10
    assert {speaker for speaker, _ in got["turns"]} == {"A"} and "better" in got["turns"][-1][1].lower()
    assert got["stream"][-1] == "transcript.text.done" and "transcript.text.delta" in got["stream"]
    assert got["realtime"][0] == "session.created" and "better" in got["realtime"][-1].lower()
    assert {"tiny.en", "gpt-transcribe", "gpt-4o-transcribe-diarize", "whisper-1"} <= set(got["models"])


def test_litellm(python: Path, server: ServerProcess) -> None:
    got = run_python(python, "litellm", server)
    assert all("fail better" in text.lower() for text in got.values()), got


def test_openai_js_sdk_over_https(tls_server: ServerProcess, tmp_path: Path) -> None:
    got = run_node("openai", tls_server, tmp_path)
    assert "fail better" in got["json"].lower() and got["verbose"] == got["json"] and got["words"] > 10
    assert got["kinds"][-1] == "transcript.text.done" and got["done"] == got["json"]
    assert "gpt-4o-transcribe" in got["models"]


def test_openai_js_realtime_client_over_wss(tls_server: ServerProcess, tmp_path: Path) -> None:
    got = run_node("realtime", tls_server, tmp_path)
    assert got["url"].startswith("wss://127.0.0.1:") and "better" in got["transcript"].lower()
    assert got["events"][0] == "session.created" and "error" not in got["events"]


def test_vercel_ai_sdk_transcribe_with_speakers(tls_server: ServerProcess, tmp_path: Path) -> None:
    got = run_node("ai-transcribe", tls_server, tmp_path)
    assert got["segments"] == 16 and got["last"] == "No." and sorted(got["speakers"]) == ["A", "B"]
    assert got["duration"] == pytest.approx(28.3, abs=0.1)


def test_vercel_ai_sdk_streaming_transcription(tls_server: ServerProcess, tmp_path: Path) -> None:
    got = run_node("ai-stream", tls_server, tmp_path)
    assert "fail better" in got["text"].lower() and "transcript-final" in got["parts"]
    assert got["warnings"] == []


def test_livekit_stays_connected_through_silence_longer_than_the_idle_limit_then_transcribes(
    livekit_muted: subprocess.Popen[str],
) -> None:
    out, err = livekit_muted.communicate(timeout=MUTED_SECONDS + TIMEOUT)
    assert livekit_muted.returncode == 0, err[-3000:]
    got = json.loads(out.splitlines()[-1])
    assert got["errors"] == [] and got["seconds"] >= MUTED_SECONDS
    assert "better" in " ".join(got["finals"]).lower(), got
