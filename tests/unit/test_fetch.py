"""fetch_to_tempfile against a real local HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.api.url_fetch import SourceTimeout, fetch_to_tempfile, is_private_address
from app.errors import InputTooLarge, InvalidInput, SourceFailed, SourceNotFound

PAYLOAD = bytes(range(256)) * 400  # 100 KiB


class Server:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.hosts_seen: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.hosts_seen.append(self.headers.get("Host", ""))
                path = self.path
                if path.startswith("/audio"):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(PAYLOAD)))
                    self.end_headers()
                    self.wfile.write(PAYLOAD)
                elif path == "/chunked-big":  # no Content-Length: the limit must hold while reading
                    self.send_response(200)
                    self.end_headers()
                    for _ in range(20):
                        self.wfile.write(PAYLOAD)
                    self.close_connection = True
                elif path.startswith("/redirect/"):
                    self.send_response(302)
                    self.send_header("Location", path.removeprefix("/redirect"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path.startswith("/goto?"):
                    self.send_response(307)
                    self.send_header("Location", path.split("?", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/loop":
                    self.send_response(302)
                    self.send_header("Location", "/loop")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/stall-headers":
                    outer.release.wait(10)
                elif path == "/stall-body":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(PAYLOAD)))
                    self.end_headers()
                    self.wfile.write(PAYLOAD[:100])
                    self.wfile.flush()
                    outer.release.wait(10)
                elif path == "/error":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    yield srv
    srv.release.set()
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "fetch"
    d.mkdir()
    return d


def fetch(url: str, dest: Path, *, allow_private: bool = True, max_bytes: int = 10**6, timeout_s: float = 5.0, **kw):
    return asyncio.run(
        fetch_to_tempfile(
            url, max_bytes=max_bytes, timeout_s=timeout_s, allow_private=allow_private, dest_dir=dest, **kw
        )
    )


def test_success_private_file(server: Server, dest: Path) -> None:
    path = fetch(server.url("/audio.wav"), dest)
    try:
        assert path.read_bytes() == PAYLOAD
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.suffix == ".wav"
        assert path.parent == dest
    finally:
        path.unlink()


def test_private_address_refused_by_default(server: Server, dest: Path) -> None:
    with pytest.raises(InvalidInput, match="ALLOW_PRIVATE_URLS=true") as info:
        fetch(server.url("/audio.wav"), dest, allow_private=False)
    assert info.value.about == "audio"
    assert server.hosts_seen == []  # refused before connecting
    assert list(dest.iterdir()) == []


def test_localhost_name_refused(server: Server, dest: Path) -> None:
    with pytest.raises(InvalidInput, match="private address"):
        fetch(f"http://localhost:{server.port}/audio.wav", dest, allow_private=False)


def test_redirect_followed_and_rechecked(server: Server, dest: Path) -> None:
    path = fetch(server.url("/redirect/redirect/audio.mp3"), dest)
    assert path.read_bytes() == PAYLOAD
    path.unlink()


def test_redirect_to_loopback_refused(server: Server, dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first hop that passes the check redirects to a loopback IP: the second hop is checked and refused.

    To reach a first hop at all from this sandbox, the policy treats exactly 127.0.0.1 as public; the redirect then
    goes to 127.0.0.2, which is still loopback.
    """
    from app.api import url_fetch as fetch_module

    original = fetch_module.is_private_address
    monkeypatch.setattr(
        fetch_module, "is_private_address", lambda ip: ip != ipaddress.ip_address("127.0.0.1") and original(ip)
    )
    target = f"http://127.0.0.2:{server.port}/audio.wav"
    with pytest.raises(InvalidInput, match=r"private address \(127\.0\.0\.2\)"):
        fetch(server.url(f"/goto?{target}"), dest, allow_private=False)
    assert len(server.hosts_seen) == 1
    assert list(dest.iterdir()) == []


def test_connection_pinned_to_checked_ip(server: Server, dest: Path) -> None:
    """The name is resolved once; the request goes to that IP and still carries the original Host."""
    calls: list[str] = []

    async def resolver(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        calls.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    path = fetch(f"http://nas.invalid:{server.port}/audio.flac", dest, resolver=resolver)
    assert path.read_bytes() == PAYLOAD
    path.unlink()
    assert calls == ["nas.invalid"]
    assert server.hosts_seen == [f"nas.invalid:{server.port}"]


def test_too_many_redirects(server: Server, dest: Path) -> None:
    with pytest.raises(InvalidInput, match="redirected more than 5"):
        fetch(server.url("/loop"), dest)
    assert len(server.hosts_seen) == 6
    assert list(dest.iterdir()) == []


def test_not_found(server: Server, dest: Path) -> None:
    with pytest.raises(SourceNotFound, match="Audio file not found") as info:
        fetch(server.url("/missing.wav"), dest)
    assert info.value.about == "audio"
    assert list(dest.iterdir()) == []


def test_other_status_is_upstream_error(server: Server, dest: Path) -> None:
    with pytest.raises(SourceFailed, match="HTTP 500") as info:
        fetch(server.url("/error"), dest)
    assert info.value.about == "audio"


def test_oversize_by_content_length(server: Server, dest: Path) -> None:
    with pytest.raises(InputTooLarge) as info:
        fetch(server.url("/audio.wav"), dest, max_bytes=1000)
    assert info.value.about == "audio"
    assert list(dest.iterdir()) == []


def test_oversize_while_reading(server: Server, dest: Path) -> None:
    with pytest.raises(InputTooLarge):
        fetch(server.url("/chunked-big"), dest, max_bytes=len(PAYLOAD) * 3)
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/a.wav", "file:///etc/passwd", "gopher://x/", "not a url", ""])
def test_bad_scheme(url: str, dest: Path) -> None:
    with pytest.raises(InvalidInput):
        fetch(url, dest)
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("path", ["/stall-headers", "/stall-body"])
def test_timeout(server: Server, dest: Path, path: str) -> None:
    with pytest.raises(SourceTimeout) as info:
        fetch(server.url(path), dest, timeout_s=0.3)
    assert info.value.about == "audio"
    assert list(dest.iterdir()) == []


def test_connection_refused_is_upstream_error(dest: Path) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(SourceFailed):
        fetch(f"http://127.0.0.1:{port}/a.wav", dest)
    assert list(dest.iterdir()) == []


def test_unresolvable_host(dest: Path) -> None:
    with pytest.raises(InvalidInput, match="resolve"):
        fetch("http://does-not-exist.invalid/a.wav", dest)


def test_metadata_always_refused(dest: Path) -> None:
    with pytest.raises(InvalidInput, match="metadata"):
        fetch("http://169.254.169.254/latest/meta-data/", dest, allow_private=True)
    with pytest.raises(InvalidInput, match="metadata"):
        fetch("http://[::ffff:169.254.169.254]/", dest, allow_private=True)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.10",
        "169.254.1.1",
        "100.64.0.1",
        "100.127.255.254",
        "224.0.0.1",
        "240.0.0.1",
        "0.0.0.0",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_private_addresses(address: str) -> None:
    assert is_private_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address: str) -> None:
    assert not is_private_address(ipaddress.ip_address(address))


@given(st.ip_addresses(v=4))
def test_mapped_ipv6_judged_like_ipv4(ip: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{ip}")
    assert is_private_address(mapped) == is_private_address(ip)


def test_no_temp_files_leak_on_refusal(tmp_path: Path) -> None:
    before = set(os.listdir(tmp_path))
    with pytest.raises(InvalidInput):
        fetch("http://127.0.0.1:9/a.wav", tmp_path, allow_private=False)
    assert set(os.listdir(tmp_path)) == before
