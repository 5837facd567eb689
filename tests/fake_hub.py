"""A fake Hugging Face hub on 127.0.0.1 for download tests: the repo-info API, resolve redirects to a CDN, Range.

    hub.repo("acme/tiny-asr")["model.onnx"] = HubFile(b"...")      # then point HF_ENDPOINT / endpoint= at `url`

It answers what `app.weights.hub` asks: `GET /api/models/{repo}/revision/main?blobs=true` (sizes, LFS sha256, git blob
ids), `GET /{repo}/resolve/{commit}/{file}` (302 to `/cdn/{repo}/{file}`, as the hub redirects to its CDN) and the
CDN file with `Range: bytes=N-` (206) unless `honour_range` is off. Every request is recorded with its Range header.
Import the `hub` fixture into a test module (`hub = fake_hub.hub`).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = "acme/tiny-asr"  # the default repository (`FakeHub.files`)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    content: bytes
    lfs: bool = True
    served: bytes | None = None  # what the CDN actually sends (for corruption tests)


@dataclass
class FakeHub:
    url: str = ""
    repos: dict[str, dict[str, HubFile]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    honour_range: bool = True
    cut_first_transfer_at: int | None = None  # close the connection after this many bytes, once
    lock: threading.Lock = field(default_factory=threading.Lock)

    def repo(self, repo: str) -> dict[str, HubFile]:
        return self.repos.setdefault(repo, {})

    @property
    def files(self) -> dict[str, HubFile]:
        return self.repo(REPO)

    def serve_folder(self, repo: str, folder: Path) -> None:
        """Publish every file of `folder` in `repo` (binary files as LFS, text files as plain git blobs)."""
        for path in sorted(folder.iterdir()):
            if path.is_file():
                lfs = path.suffix not in (".json", ".txt")
                self.repo(repo)[path.name] = HubFile(path.read_bytes(), lfs=lfs)

    def api_json(self, repo: str) -> bytes:
        siblings = []
        for name, f in self.repos[repo].items():
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
        return json.dumps({"id": repo, "sha": COMMIT, "siblings": siblings, "unknown": {"x": 1}}).encode()

    def cdn_requests(self) -> list[tuple[str, str | None]]:
        """The file transfers (path under /cdn/, Range header)."""
        return [r for r in self.requests if r[0].startswith("/cdn/")]


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
            api = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/main", path)
            if api and api.group(1) in hub.repos and url.query == "blobs=true":
                return self._send(200, hub.api_json(api.group(1)), "application/json")
            resolve = re.fullmatch(rf"/([^/]+/[^/]+)/resolve/{COMMIT}/(.+)", path)
            if resolve and resolve.group(2) in hub.repos.get(resolve.group(1), {}):  # like the hub: to the CDN
                self.send_response(302)
                self.send_header("Location", f"/cdn/{resolve.group(1)}/{resolve.group(2)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            cdn = re.fullmatch(r"/cdn/([^/]+/[^/]+)/(.+)", path)
            if cdn and cdn.group(2) in hub.repos.get(cdn.group(1), {}):
                f = hub.repos[cdn.group(1)][cdn.group(2)]
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
def hub() -> Iterator[FakeHub]:
    fake = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_endpoint() -> str:
    """An endpoint on 127.0.0.1 that refuses connections (what an offline machine sees, at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
