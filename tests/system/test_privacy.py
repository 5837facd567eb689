"""Private by construction, shown on a running server traced with strace: no outbound connection, nothing written
outside MODELS_DIR and the request temp folders (gone after each request), no third-party telemetry even when the
environment asks for it, and one log format (library records included) that never carries transcript text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.server import AUDIO, tiny_server

WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT")


def _syscalls(trace: Path, name: str) -> list[str]:
    return [line for line in trace.read_text().splitlines() if re.match(rf"^\d+\s+{name}\(", line)]


def _written_paths(trace: Path) -> set[str]:
    """Paths the traced process created, opened for writing, made, renamed or linked (successful calls only)."""
    paths: set[str] = set()
    for line in trace.read_text().splitlines():
        call = re.match(r"^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)", line)
        if call is None or call.group(3).startswith("-"):
            continue
        name, args = call.group(1), call.group(2)
        quoted = re.findall(r'"((?:[^"\\]|\\.)*)"', args)
        opened_for_writing = name in ("openat", "open") and WRITE_FLAGS.search(args)
        if opened_for_writing or name in ("creat", "mkdir", "mkdirat"):
            paths.add(quoted[0])
        elif name in ("rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat"):
            paths.update(quoted)
    return paths


@pytest.mark.slow
def test_a_transcribing_server_stays_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    trace = tmp_path / "strace.txt"
    syscalls = "connect,open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat,symlink,symlinkat"
    strace = ["strace", "-f", "-qq", "-e", f"trace={syscalls}", "-e", "signal=none", "-o", str(trace)]
    env = {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "LOG_JSON": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
        # The server forces telemetry off whatever its environment says.
        "ORT_DISABLE_TELEMETRY": "0",
        "HF_HUB_DISABLE_TELEMETRY": "0",
        "DO_NOT_TRACK": "0",
    }
    with tiny_server(tmp_path, wrapper=strace, **env) as server:
        for fmt in ("json", "verbose_json", "srt"):
            with open(AUDIO / "beckett.wav", "rb") as f:
                response = httpx.post(
                    f"{server.url}/v1/audio/transcriptions",
                    files={"file": ("beckett.wav", f, "audio/wav")},
                    data={"response_format": fmt},
                    timeout=120,
                )
            assert response.status_code == 200, response.text
            assert "fail better" in response.text.lower()
        server.wait_until_idle()
        assert server.temp_entries() == []
        server.next_request_line("/v1/audio/transcriptions", seen=2)  # the third request's line is written
        log = server.log()

    # Only loopback (the test client) and local sockets: no DNS, no telemetry upload, no hub.
    for line in _syscalls(trace, "connect"):
        family = re.search(r"sa_family=(\w+)", line)
        assert family is not None, line
        if family.group(1) == "AF_INET":
            assert 'inet_addr("127.' in line, line
        elif family.group(1) == "AF_INET6":
            assert 'inet_pton(AF_INET6, "::1"' in line, line
        else:
            assert family.group(1) in ("AF_UNIX", "AF_NETLINK"), line

    # Writes only inside MODELS_DIR and the request temp folders, plus devices. Python's tempfile probes TMPDIR once
    # with a file of 8 random characters that it removes at once (the listing below shows it gone).
    allowed = (str(tmp_path / "models"), str(tmp_path / "tmp" / "stt-appliance"), "/dev/")
    probe = re.compile(re.escape(str(tmp_path / "tmp")) + r"/[a-z0-9_]{8}$")
    outside = sorted(p for p in _written_paths(trace) if not p.startswith(allowed) and not probe.match(p))
    assert outside == [], outside
    assert list(home.iterdir()) == []  # no ~/.cache/Microsoft/... device id or event database
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == ["stt-appliance"]  # no onnxruntime `.ses` file

    # One log format: every line, uvicorn's included, is a structlog JSON record; none carries the transcript.
    lines = [line for line in log.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert {"uvicorn.error"} <= {r.get("logger") for r in records}
    assert sum(r["event"] == "request" for r in records) == 3
    for word in ("tried", "failed", "matter", "better"):
        assert word not in log.lower()
