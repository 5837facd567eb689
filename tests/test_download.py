"""app.download against a fake Hugging Face hub on 127.0.0.1 (API JSON + resolve redirect + Range support)."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import download
from app.download import DownloadError, HubUnreachableError, download_repo_files

REPO = "acme/tiny-asr"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    content: bytes
    lfs: bool = True
    served: bytes | None = None  # what the CDN actually sends (for corruption tests)


@dataclass
class FakeHub:
    files: dict[str, HubFile] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    honour_range: bool = True
    cut_first_transfer_at: int | None = None  # close the connection after this many bytes, once
    lock: threading.Lock = field(default_factory=threading.Lock)

    def api_json(self) -> bytes:
        siblings = []
        for name, f in self.files.items():
            entry: dict[str, object] = {"rfilename": name, "size": len(f.content)}
            if f.lfs:
                entry["blobId"] = "f" * 40  # the pointer's git id, not the content's
                entry["lfs"] = {
                    "sha256": hashlib.sha256(f.content).hexdigest(),
                    "size": len(f.content),
                    "pointerSize": 134,
                }
            else:
                entry["blobId"] = hashlib.sha1(b"blob %d\0" % len(f.content) + f.content).hexdigest()
            siblings.append(entry)
        return json.dumps({"id": REPO, "sha": COMMIT, "siblings": siblings, "unknown": {"x": 1}}).encode()


def make_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path = unquote(url.path)
            with hub.lock:
                hub.requests.append((path, self.headers.get("Range")))
            if path == f"/api/models/{REPO}/revision/main" and url.query == "blobs=true":
                return self._send(200, hub.api_json(), "application/json")
            match = re.fullmatch(rf"/{REPO}/resolve/{COMMIT}/(.+)", path)
            if match and match.group(1) in hub.files:  # like the hub: redirect to the CDN
                self.send_response(302)
                self.send_header("Location", f"/cdn/{match.group(1)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if path.startswith("/cdn/") and path[5:] in hub.files:
                f = hub.files[path[5:]]
                return self._send_file(f.served if f.served is not None else f.content)
            return self._send(404, b'{"error":"not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_file(self, data: bytes) -> None:
            start = 0
            range_header = self.headers.get("Range")
            if range_header and hub.honour_range:
                start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1))  # type: ignore[union-attr]
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            with hub.lock:
                cut, hub.cut_first_transfer_at = hub.cut_first_transfer_at, None
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def hub() -> Iterator[tuple[FakeHub, str]]:
    fake = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "_backoff_seconds", lambda attempt: 0.0)
    monkeypatch.delenv("HF_TOKEN", raising=False)


def blob(n: int, seed: int = 1) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d-%d" % (seed, counter)).digest()
        counter += 1
    return bytes(out[:n])


def standard_files(hub: FakeHub) -> None:
    hub.files["config.json"] = HubFile(b'{"version":"v3"}', lfs=False)
    hub.files["model.onnx"] = HubFile(blob(3 * 1024 * 1024 + 17))
    hub.files["vocab.txt"] = HubFile("▁ 0\nа 1\n<blk> 2\n".encode(), lfs=False)
    hub.files["README.md"] = HubFile(b"# not wanted", lfs=False)


def resolve_requests(hub: FakeHub) -> list[tuple[str, str | None]]:
    return [r for r in hub.requests if r[0].startswith("/cdn/")]


def test_fresh_download_places_verified_files(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    fake, endpoint = hub
    standard_files(fake)
    dest = tmp_path / "models" / "v3_ctc"
    result = download_repo_files(
        REPO, ["config.json", "model.onnx", "vocab.txt"], dest, endpoint=endpoint, progress=False
    )
    assert result == dest
    assert sorted(p.name for p in dest.iterdir()) == ["config.json", "model.onnx", "vocab.txt"]
    for name in ("config.json", "model.onnx", "vocab.txt"):
        assert (dest / name).read_bytes() == fake.files[name].content
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["v3_ctc"]  # no staging dir left
    # Files are fetched from the commit the API reported, not the moving branch name.
    assert any(p.startswith(f"/{REPO}/resolve/{COMMIT}/") for p, _ in fake.requests)


def test_glob_patterns_and_optional_files(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    fake, endpoint = hub
    standard_files(fake)
    fake.files["vocabulary.json"] = HubFile(b'["a","b"]', lfs=False)
    dest = tmp_path / "whisper"
    download_repo_files(
        REPO, ["vocabulary.*", "model.onnx"], dest, endpoint=endpoint, progress=False,
        optional=["preprocessor_config.json", "model.onnx?data"],
    )  # fmt: skip
    assert sorted(p.name for p in dest.iterdir()) == ["model.onnx", "vocabulary.json"]


def test_resume_sends_range_request(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    fake, endpoint = hub
    standard_files(fake)
    content = fake.files["model.onnx"].content
    staging = tmp_path / ".partial-m"
    staging.mkdir()
    (staging / "model.onnx.part").write_bytes(content[:1_000_000])
    dest = tmp_path / "m"
    download_repo_files(REPO, ["model.onnx"], dest, endpoint=endpoint, progress=False)
    assert (dest / "model.onnx").read_bytes() == content
    assert resolve_requests(fake) == [("/cdn/model.onnx", "bytes=1000000-")]
    assert not staging.exists()


def test_interrupted_transfer_is_resumed_in_the_same_call(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    fake, endpoint = hub
    standard_files(fake)
    fake.cut_first_transfer_at = 1_500_000
    dest = tmp_path / "m"
    download_repo_files(REPO, ["model.onnx"], dest, endpoint=endpoint, progress=False)
    assert (dest / "model.onnx").read_bytes() == fake.files["model.onnx"].content
    ranges = [r for _, r in resolve_requests(fake)]
    assert ranges[0] is None
    assert len(ranges) == 2 and ranges[1] is not None and int(ranges[1][6:-1]) > 0


def test_server_ignoring_range_restarts_cleanly(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    fake, endpoint = hub
    standard_files(fake)
    fake.honour_range = False
    staging = tmp_path / ".partial-m"
    staging.mkdir()
    (staging / "model.onnx.part").write_bytes(b"x" * 1000)  # even a wrong prefix is replaced, not appended to
    dest = tmp_path / "m"
    download_repo_files(REPO, ["model.onnx"], dest, endpoint=endpoint, progress=False)
    assert (dest / "model.onnx").read_bytes() == fake.files["model.onnx"].content


@pytest.mark.parametrize("name", ["model.onnx", "config.json"])  # LFS sha256 and git blob sha1
def test_bad_hash_raises_and_places_nothing(hub: tuple[FakeHub, str], tmp_path: Path, name: str) -> None:
    fake, endpoint = hub
    standard_files(fake)
    good = fake.files[name].content
    fake.files[name].served = bytes([good[0] ^ 1]) + good[1:]
    dest = tmp_path / "m"
    with pytest.raises(DownloadError, match=r"(sha256|git sha1) mismatch"):
        download_repo_files(REPO, ["config.json", "model.onnx"], dest, endpoint=endpoint, progress=False)
    assert not dest.exists()
    assert not list(tmp_path.rglob(f"{name}*"))  # the corrupted part was deleted


def test_wrong_size_raises(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    fake, endpoint = hub
    standard_files(fake)
    fake.files["model.onnx"].served = fake.files["model.onnx"].content + b"extra"
    with pytest.raises(DownloadError, match="size mismatch"):
        download_repo_files(REPO, ["model.onnx"], tmp_path / "m", endpoint=endpoint, progress=False)
    assert not (tmp_path / "m").exists()


def closed_port_endpoint() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def test_unreachable_hub_fails_at_once_with_advice(tmp_path: Path) -> None:
    with pytest.raises(HubUnreachableError) as info:
        download_repo_files(REPO, ["model.onnx"], tmp_path / "m", endpoint=closed_port_endpoint(), progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert "unreachable" in message and "HF_ENDPOINT" in message and "MODELS_DIR" in message
    assert not (tmp_path / "m").exists()


def test_complete_model_is_not_downloaded_again(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    fake, endpoint = hub
    standard_files(fake)
    dest = tmp_path / "m"
    download_repo_files(REPO, ["config.json", "model.onnx"], dest, endpoint=endpoint, progress=False)
    fake.requests.clear()
    download_repo_files(REPO, ["config.json", "model.onnx"], dest, endpoint=endpoint, progress=False)
    assert fake.requests == []
    # ... and it works offline too.
    download_repo_files(REPO, ["config.json", "model.onnx"], dest, endpoint=closed_port_endpoint(), progress=False)


def test_existing_model_gets_only_its_missing_files(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    fake, endpoint = hub
    standard_files(fake)
    dest = tmp_path / "m"
    download_repo_files(REPO, ["config.json"], dest, endpoint=endpoint, progress=False)
    fake.requests.clear()
    download_repo_files(REPO, ["config.json", "vocab.txt"], dest, endpoint=endpoint, progress=False)
    assert [p for p, _ in resolve_requests(fake)] == ["/cdn/vocab.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert (dest / "vocab.txt").read_bytes() == fake.files["vocab.txt"].content


def test_missing_file_in_repo_is_a_clear_error(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    fake, endpoint = hub
    standard_files(fake)
    with pytest.raises(DownloadError, match=r"no file matching 'v3_ctc\.int8\.onnx'"):
        download_repo_files(REPO, ["v3_ctc.int8.onnx"], tmp_path / "m", endpoint=endpoint, progress=False)


def test_unknown_repo_is_a_clear_error(hub: tuple[FakeHub, str], tmp_path: Path) -> None:
    _, endpoint = hub
    with pytest.raises(DownloadError, match="not found"):
        download_repo_files("acme/nope", ["x"], tmp_path / "m", endpoint=endpoint, progress=False)


def test_progress_lines_when_not_a_terminal(
    hub: tuple[FakeHub, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, endpoint = hub
    standard_files(fake)
    download_repo_files(REPO, ["model.onnx"], tmp_path / "m", endpoint=endpoint, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith(f"{REPO}/model.onnx: 100%")
    assert 2 <= len(lines) <= 11


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=300_000), cut=st.floats(0, 1), lfs=st.booleans())
def test_resume_from_any_prefix_gives_the_exact_file(
    hub: tuple[FakeHub, str], data: bytes, cut: float, lfs: bool
) -> None:
    fake, endpoint = hub
    fake.files["f.bin"] = HubFile(data, lfs=lfs)
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp, ".partial-m")
        staging.mkdir()
        (staging / "f.bin.part").write_bytes(data[: int(len(data) * cut)])
        download_repo_files(REPO, ["f.bin"], Path(tmp, "m"), endpoint=endpoint, progress=False)
        assert Path(tmp, "m", "f.bin").read_bytes() == data
        assert [p.name for p in Path(tmp).iterdir()] == ["m"]


# ---- CLI --------------------------------------------------------------------------------------------------------


def test_cli_bundled_model_needs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "models"))
    assert download.main(["tiny.en"]) == 0
    assert "nothing to download" in capsys.readouterr().out


def test_cli_unknown_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert download.main(["no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_cli_downloads_default_model_from_settings(
    hub: tuple[FakeHub, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, endpoint = hub
    source = download.MODEL_SOURCES["v3_e2e_ctc"]
    files, _ = source.resolve("int8")
    for name in [*files, "v3_ctc.onnx", "README.md"]:
        fake.files[name] = HubFile(blob(1000, seed=len(name)), lfs=name.endswith(".onnx"))
    monkeypatch.setattr(
        download, "MODEL_SOURCES", {**download.MODEL_SOURCES, "v3_e2e_ctc": download.ModelSource(REPO, source.files)}
    )
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"MODEL=v3_e2e_ctc\nMODELS_DIR={tmp_path / 'models'}\nQUANTIZATION=int8\n")
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    assert download.main([]) == 0
    placed = sorted(p.name for p in (tmp_path / "models" / "v3_e2e_ctc").iterdir())
    assert placed == sorted(["config.json", "v3_e2e_ctc.int8.onnx", "v3_e2e_ctc_vocab.txt"])


def test_cli_offline_returns_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())
    assert download.main(["v3_ctc"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: v3_ctc: model hub http://127.0.0.1:") and "\n" not in err


def test_model_table_matches_onnx_asr_file_patterns() -> None:
    """Every GigaAM/Parakeet file onnx-asr looks for (its `?` glob) is covered by our table, fp32 and int8."""
    import fnmatch

    from onnx_asr.models.gigaam import GigaamV2Ctc, GigaamV2Rnnt, GigaamV3E2eCtc, GigaamV3E2eRnnt
    from onnx_asr.models.nemo import NemoConformerTdt

    cases = {
        "v3_ctc": GigaamV2Ctc, "v3_rnnt": GigaamV2Rnnt, "v3_e2e_ctc": GigaamV3E2eCtc, "v3_e2e_rnnt": GigaamV3E2eRnnt,
        "v2_ctc": GigaamV2Ctc, "v2_rnnt": GigaamV2Rnnt, "nvidia/parakeet-tdt-0.6b-v2": NemoConformerTdt,
    }  # fmt: skip
    for name, cls in cases.items():
        for quantization in ("none", "int8"):
            files, _ = download.MODEL_SOURCES[name].resolve(quantization)
            wanted = cls._get_model_files(None if quantization == "none" else quantization).values()
            for pattern in wanted:
                assert sum(fnmatch.fnmatchcase(f, pattern) for f in files) == 1, (name, quantization, pattern)
