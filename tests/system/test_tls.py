"""Native TLS (issue 22): https:// and wss:// served by the server itself, with the operator's certificate
(TLS_CERT_FILE + TLS_KEY_FILE) or one it makes once (TLS=self-signed, kept in MODELS_DIR/.tls).

Clients here trust the self-signed authority (`ca.pem`) as users are told to; the browser test pins the server's
key instead (see `test_a_browser_dictates_over_https_from_a_lan_name`).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from openai import OpenAI

from app.settings import SettingsError, load_settings
from app.tls import TLS_FOLDER, fingerprint, self_signed
from tests.realtime_client import pcm24k
from tests.server import AUDIO, ROOT, ServerProcess, tiny_server

LAN_NAME = "stt.test"  # a name that is not localhost, as a LAN's box would have (RFC 6761 reserves .test)
TIMEOUT = 120.0


def verifier(ca_file: Path, name: x509.GeneralName):  # type: ignore[no-untyped-def]
    store = Store([x509.load_pem_x509_certificate(ca_file.read_bytes())])
    builder = PolicyBuilder().store(store).time(datetime.datetime.now(datetime.UTC))
    return builder.build_server_verifier(name)


def trusting(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


# --- the certificate ------------------------------------------------------------------------------------------


def test_a_self_signed_certificate_is_made_once_for_this_machines_names(tmp_path: Path) -> None:
    folder = tmp_path / TLS_FOLDER
    made = self_signed(folder, ("nas.local", "192.168.1.20"))
    assert sorted(p.name for p in folder.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]  # no authority key
    assert stat.S_IMODE((folder / "key.pem").stat().st_mode) == 0o600
    leaf = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
    key = serialization.load_pem_private_key((folder / "key.pem").read_bytes(), None)
    assert key.public_key() == leaf.public_key()  # the key on disk is the server's, not the authority's
    names = [x509.DNSName(n) for n in ("localhost", "nas.local", socket.gethostname())]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1", "192.168.1.20")]
    for name in names:  # a client that trusts ca.pem accepts the certificate for each
        verifier(folder / "ca.pem", name).verify(leaf, [])
    with pytest.raises(VerificationError):
        verifier(folder / "ca.pem", x509.DNSName("example.com")).verify(leaf, [])
    assert made.fingerprint_sha256 == fingerprint(leaf) and made.ca_fingerprint_sha256 is not None
    assert self_signed(folder, ("nas.local",)) == made  # covered: kept as it is
    renewed = self_signed(folder, ("nas.local", "other.lan"))  # a new name: made again
    assert renewed.fingerprint_sha256 != made.fingerprint_sha256 and "other.lan" in renewed.names


def test_damaged_files_are_made_again(tmp_path: Path) -> None:
    folder = tmp_path / TLS_FOLDER
    first = self_signed(folder, ())
    (folder / "cert.pem").write_text("not a certificate")
    again = self_signed(folder, ())
    assert again.fingerprint_sha256 != first.fingerprint_sha256
    verifier(folder / "ca.pem", x509.DNSName("localhost")).verify(
        x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes()), []
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TLS_CERT_FILE": "/c.pem"}, "TLS_CERT_FILE and TLS_KEY_FILE go together"),
        ({"TLS": "self-signed", "TLS_CERT_FILE": "/c.pem", "TLS_KEY_FILE": "/k.pem"}, "unset TLS_CERT_FILE"),
        ({"TLS_NAMES": "nas.local"}, "it needs TLS=self-signed"),
        ({"TLS": "on"}, "TLS"),
    ],
)
def test_tls_settings_that_cannot_work_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env, None)


def test_a_certificate_that_does_not_load_stops_the_server_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MODEL": "tiny.en", "ALLOWED_MODELS": "tiny.en"}
    env |= {"MODELS_DIR": str(tmp_path), "TLS_CERT_FILE": str(tmp_path / "cert.pem"), "TLS_KEY_FILE": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "app"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Invalid configuration: TLS_CERT_FILE/TLS_KEY_FILE: cannot load")


# --- a server on https:// and wss:// ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with tiny_server(tmp_path_factory.mktemp("tls"), TLS="self-signed", TLS_NAMES=LAN_NAME) as server:
        yield server


def ca_of(server: ServerProcess) -> Path:
    return Path(server.env["MODELS_DIR"]) / TLS_FOLDER / "ca.pem"


def test_health_and_the_log_give_the_fingerprints(tls_server: ServerProcess) -> None:
    health = httpx.get(f"{tls_server.url}/health", verify=trusting(ca_of(tls_server))).json()
    leaf = x509.load_pem_x509_certificate((ca_of(tls_server).parent / "cert.pem").read_bytes())
    assert health["tls"]["mode"] == "self-signed" and health["tls"]["fingerprint_sha256"] == fingerprint(leaf)
    assert LAN_NAME in health["tls"]["names"] and "127.0.0.1" in health["tls"]["names"]
    assert f"fingerprint_sha256={fingerprint(leaf)}" in tls_server.log()
    served = httpx.get(f"{tls_server.url}/ca.pem", verify=trusting(ca_of(tls_server)))
    assert served.content == ca_of(tls_server).read_bytes()  # a phone downloads the authority here
    ca = x509.load_pem_x509_certificate(served.content)
    assert fingerprint(ca) == health["tls"]["ca_fingerprint_sha256"]
    with pytest.raises(httpx.HTTPError):  # the port speaks TLS only
        httpx.get(tls_server.url.replace("https://", "http://") + "/health", timeout=5)


def test_the_openai_sdk_transcribes_over_https(tls_server: ServerProcess) -> None:
    http_client = httpx.Client(verify=trusting(ca_of(tls_server)), timeout=TIMEOUT)
    client = OpenAI(base_url=f"{tls_server.url}/v1", api_key="unused", http_client=http_client, max_retries=0)
    with open(AUDIO / "beckett.wav", "rb") as f:
        assert "better" in client.audio.transcriptions.create(file=f, model="gpt-4o-transcribe").text.lower()


def test_live_dictation_over_wss(tls_server: ServerProcess) -> None:
    url = tls_server.url.replace("https://", "wss://") + "/v1/realtime?intent=transcription"
    pcm = pcm24k(AUDIO / "beckett.wav")

    async def dictate() -> str:
        async with websockets.connect(url, ssl=trusting(ca_of(tls_server)), max_size=None) as socket_:
            manual = {"type": "transcription", "audio": {"input": {"turn_detection": None}}}
            await socket_.send(json.dumps({"type": "session.update", "session": manual}))
            audio = base64.b64encode(pcm).decode()
            await socket_.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
            await socket_.send(json.dumps({"type": "input_audio_buffer.commit"}))
            while True:
                event = json.loads(await asyncio.wait_for(socket_.recv(), 60))
                assert event["type"] != "error", event
                if event["type"] == "conversation.item.input_audio_transcription.completed":
                    return str(event["transcript"])

    assert "better" in asyncio.run(dictate()).lower()


def healthcheck(server: ServerProcess, **override: str) -> int:
    env = {**os.environ, **server.env, "HOST": "127.0.0.1", "PORT": str(server.port), **override}
    return subprocess.run([sys.executable, "-m", "app", "healthcheck"], cwd=ROOT, env=env, timeout=30).returncode


def test_the_container_healthcheck_speaks_https_and_http(tls_server: ServerProcess, whisper_server) -> None:
    assert healthcheck(tls_server) == 0
    assert healthcheck(whisper_server) == 0
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        assert healthcheck(whisper_server, PORT=str(unused.getsockname()[1])) == 1  # nothing answers there


def test_the_operators_certificate_files_are_served(tmp_path: Path) -> None:
    mine = self_signed(tmp_path / "mine", (LAN_NAME,))  # stands for a certificate the operator has
    env = {"TLS_CERT_FILE": str(mine.cert_file), "TLS_KEY_FILE": str(mine.key_file)}
    with tiny_server(tmp_path, **env) as server:
        verify = trusting(tmp_path / "mine" / "ca.pem")
        health = httpx.get(f"{server.url}/health", verify=verify).json()
        assert health["tls"]["mode"] == "files" and health["tls"]["fingerprint_sha256"] == mine.fingerprint_sha256
        missing = httpx.get(f"{server.url}/ca.pem", verify=verify)  # no authority of its own to hand out
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"
        assert not (tmp_path / "models" / TLS_FOLDER).exists()


# --- a browser's microphone on a LAN name -----------------------------------------------------------------------


def spki_pin(cert_file: Path) -> str:
    """base64 of the SHA-256 of the certificate's public key: what Chromium's --ignore-certificate-errors-spki-list
    takes."""
    public = x509.load_pem_x509_certificate(cert_file.read_bytes()).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.mark.browser
def test_a_browser_dictates_over_https_from_a_lan_name(tls_server: ServerProcess, whisper_server) -> None:
    """Headless Chromium resolves stt.test to 127.0.0.1 (--host-resolver-rules), so the page is not on localhost:
    over http:// it gets no microphone at all (not a secure context); over https:// it dictates.

    Chromium is told to accept exactly this server's key (--ignore-certificate-errors-spki-list), not to ignore
    certificate errors in general: the page is then a secure context with a valid connection, as it is for a user
    who trusted ca.pem, and the test needs no NSS database (certutil) nor a change to the machine's trust store."""
    from playwright.sync_api import expect, sync_playwright

    from tests.browser.test_ui_browser import CHROMIUM, CHROMIUM_ARGS, TWO_CITIES

    args = [
        *CHROMIUM_ARGS,
        f"--host-resolver-rules=MAP {LAN_NAME} 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={spki_pin(ca_of(tls_server).parent / 'cert.pem')}",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={TWO_CITIES}",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            page = browser.new_page()
            page.goto(f"http://{LAN_NAME}:{whisper_server.port}/")
            assert page.evaluate("[window.isSecureContext, typeof navigator.mediaDevices]") == [False, "undefined"]
            page.goto(f"https://{LAN_NAME}:{tls_server.port}/")
            assert page.evaluate("window.isSecureContext") is True
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.click("#mic")
            expect(page.locator("#mic")).to_have_attribute("aria-pressed", "true")
            expect(page.locator("#transcript")).to_contain_text("best of times", timeout=30000)
            page.click("#mic")
            expect(page.locator("#mic")).to_have_attribute("aria-pressed", "false", timeout=20000)
            assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
            assert errors == []
        finally:
            browser.close()
