"""The Wyoming server (Home Assistant's speech-to-text protocol) against the real server, driven with the reference
library's `AsyncTcpClient` as Home Assistant's integration drives it (`tests/wyoming_client.py`), and with raw bytes
where a client breaks the protocol. Latency is not asserted here: `bench/wyoming_latency.py` measures it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from wyoming.audio import AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event, async_read_event

from app.wyoming.connection import TranscribeRequest, keywords
from tests import wyoming_client as wy
from tests.audio_factory import pcm_s16le
from tests.server import AUDIO, ServerProcess, free_port, tiny_server
from tests.whisper_base import GERMAN, words_of
from tools.textmetrics import word_error_rate

HOST = "127.0.0.1"
TWO_CITIES = AUDIO / "two_cities.wav"
REFERENCE = (AUDIO / "two_cities.txt").read_text()
BECKETT = AUDIO / "beckett.wav"
BECKETT_TEXT = (AUDIO / "beckett.txt").read_text()
HA_TRAILING_SILENCE = 0.7  # Home Assistant's VAD ends a command after 0.7 s of silence (its default sensitivity)


class WyomingServer:
    def __init__(self, http: ServerProcess, port: int) -> None:
        self.http = http
        self.port = port

    def metric(self, name: str) -> float:
        """One sample of /metrics (0 when absent)."""
        text = httpx.get(f"{self.http.url}/metrics", timeout=10).text
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        return float(match.group(1)) if match else 0.0

    def wyoming_lines(self) -> list[str]:
        """The log lines of ended connections (one each, written once the connection is closed)."""
        return [line for line in self.http.log().splitlines() if "wyoming_connection" in line]

    def line_of(self, run: Callable[[], object]) -> str:
        """`run()`'s connection's log line: the one line that appears after it (call with no other client)."""
        seen = len(self.wyoming_lines())
        run()
        deadline = time.monotonic() + 10
        while len(lines := self.wyoming_lines()) <= seen:
            assert time.monotonic() < deadline, "no log line for the connection"
            time.sleep(0.05)
        return lines[seen]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, whisper_base_models_dir: Path) -> Iterator[WyomingServer]:
    """MODEL=auto: English to tiny.en, every other language to the multilingual Whisper base; GigaAM v3_ctc allowed
    but not installed (its weights are not in MODELS_DIR)."""
    port = free_port()
    env = {
        "MODEL": "auto",
        "AUTO_ROUTES": "en=tiny.en,*=base",
        "ALLOWED_MODELS": "tiny.en,base,v3_ctc",
        "MODELS_DIR": str(whisper_base_models_dir),
        "WYOMING_PORT": str(port),
    }
    with tiny_server(tmp_path_factory.mktemp("wyoming"), **env) as http:
        yield WyomingServer(http, port)


def test_describe_names_every_model_with_its_languages(server: WyomingServer) -> None:
    info = asyncio.run(wy.describe(HOST, server.port))
    (program,) = info.asr
    assert program.name == "stt-appliance" and program.installed
    assert program.supports_transcript_streaming is True
    assert program.requires_external_vad is True  # Home Assistant's VAD ends the command (audio-stop)
    models = {m.name: m for m in program.models}
    assert list(models) == ["tiny.en", "base", "v3_ctc", "auto"]
    assert models["tiny.en"].languages == ["en"] and models["tiny.en"].installed
    assert {"en", "de", "ru", "uk", "kk"} <= set(models["base"].languages) and models["base"].installed
    assert models["v3_ctc"].languages == ["ru"] and not models["v3_ctc"].installed  # would be fetched on first use
    assert models["v3_ctc"].attribution.url == "https://huggingface.co/istupakov/gigaam-v3-onnx"
    assert models["tiny.en"].attribution.name == "OpenAI" and models["tiny.en"].version  # faster-whisper's version
    assert set(models["auto"].languages) == set(models["base"].languages) and models["auto"].installed


def test_two_cities_at_real_time_gives_partial_text_then_one_transcript(server: WyomingServer) -> None:
    audio = pcm_s16le(TWO_CITIES, silence_after=HA_TRAILING_SILENCE)
    runs: list[wy.Run] = []
    line = server.line_of(lambda: runs.append(asyncio.run(wy.transcribe(HOST, server.port, audio, language="en"))))
    (run,) = runs
    kinds = [e.type for e in run.events]
    assert kinds[0] == "transcript-start" and kinds[-2:] == ["transcript", "transcript-stop"]
    assert set(kinds) == {"transcript-start", "transcript-chunk", "transcript", "transcript-stop"}
    assert run.chunks_before_stop, "no transcript-chunk before audio-stop"
    transcript = run.transcript
    assert transcript.language == "en"
    assert word_error_rate(REFERENCE, transcript.text) <= 0.10, transcript.text
    # chunks are append-only previews of real words (the transcript is the authority)
    reference_words = {w.strip(".,;:!?'\"").lower() for w in REFERENCE.split()}
    previewed = [w.strip(".,;:!?'\"").lower() for w in run.chunk_text.split()]
    assert sum(w in reference_words for w in previewed) >= 0.9 * len(previewed)
    assert "best of times" not in server.http.log()  # no text in the logs
    assert "model=tiny.en" in line and "transcripts=1" in line  # auto sent English to tiny.en
    assert server.metric("stt_wyoming_latency_seconds_count") >= 1


def test_the_same_audio_at_22_05_khz_stereo(server: WyomingServer) -> None:
    """Format conversion does not depend on the pace: sent at 4x real time."""
    audio = pcm_s16le(TWO_CITIES, rate=22050, channels=2, silence_after=HA_TRAILING_SILENCE)
    run = asyncio.run(wy.transcribe(HOST, server.port, audio, rate=22050, channels=2, speed=4.0, language="en"))
    assert word_error_rate(REFERENCE, run.transcript.text) <= 0.10, run.transcript.text


def test_auto_routes_by_the_language_the_event_names(server: WyomingServer, tmp_path: Path) -> None:
    speech = tmp_path / "german.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-s", "130", "-w", str(speech), GERMAN], check=True)
    audio = pcm_s16le(speech, silence_after=1.0)
    runs: list[wy.Run] = []
    names = ["Küche", "Wohnzimmer", "Deckenlicht", "Stehlampe"]  # Home Assistant's area and entity names

    def german() -> None:
        runs.append(asyncio.run(wy.transcribe(HOST, server.port, audio, language="de", transcript_names=names)))

    line = server.line_of(german)
    (run,) = runs
    assert run.of("transcript"), [e.event for e in run.events]  # under heavy load: a timeout error after 30 s
    assert {"berlin", "tasse"} <= words_of(run.transcript.text), run.transcript.text
    assert run.transcript.language == "de" and "model=base" in line
    refused = asyncio.run(wy.transcribe(HOST, server.port, audio, name="tiny.en", language="de"))
    (error,) = refused.of("error")
    assert error.event.data["code"] == "unsupported_language" and "English" in error.event.data["text"]
    assert not refused.of("transcript")  # the audio that followed was not transcribed by another model


def test_home_assistants_names_become_at_most_50_keywords_names_first() -> None:
    names = [f"Light {i}" for i in range(500)]  # a large home: every entity
    request = TranscribeRequest(transcript_names=[" Kitchen ", "", "x" * 101, *names], transcript_terms=["Kitchen"])
    kept = keywords(request)
    assert kept[:2] == ("Kitchen", "Light 0") and len(kept) == 50 and "x" * 101 not in kept
    assert keywords(TranscribeRequest(transcript_terms=["timer", "timer"])) == ("timer",)


# --- hostile and malformed clients ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WyomingServer]:
    """Short limits: 1.5 s without an event, 3 s of audio per stream, one live session at a time."""
    port = free_port()
    env = {
        "WYOMING_PORT": str(port),
        "REALTIME_IDLE_TIMEOUT_S": "1.5",
        "WYOMING_MAX_UTTERANCE_S": "3",
        "REALTIME_MAX_SESSIONS": "1",
    }
    with tiny_server(tmp_path_factory.mktemp("wyoming-strict"), **env) as http:
        yield WyomingServer(http, port)


def header(kind: str, data: dict[str, object] | None = None, **extra: object) -> bytes:
    return json.dumps({"type": kind, "data": data or {}, **extra}).encode() + b"\n"


def chunk(payload: bytes, **extra: object) -> bytes:
    fmt = {"rate": 16000, "width": 2, "channels": 1}
    return header("audio-chunk", fmt, payload_length=len(payload), **extra) + payload


START = header("audio-start", {"rate": 16000, "width": 2, "channels": 1})


async def raw_session(port: int, data: bytes, *, then_close: bool = False) -> tuple[list[Event], bool]:
    """Write `data`, then read events until the server closes, or 0.5 s pass without one after an error event (well
    inside the idle timeout), or 5 s before one. Returns (events, whether the server closed the connection)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    events: list[Event] = []
    try:
        writer.write(data)
        if then_close:
            await writer.drain()
            return events, False
        writing = asyncio.ensure_future(writer.drain())  # the server may answer (and close) before it has read all
        while True:
            try:
                answered = any(e.type == "error" for e in events)
                event = await asyncio.wait_for(async_read_event(reader), 0.5 if answered else 5.0)
            except TimeoutError:
                return events, False
            if event is None:
                return events, True
            events.append(event)
    finally:
        if not then_close:
            with contextlib.suppress(ConnectionError):
                await writing
        writer.close()


Hostile = Callable[[int], Awaitable[tuple[list[Event], bool]]]


def sends(data: bytes, *, then_close: bool = False) -> Hostile:
    return lambda port: raw_session(port, data, then_close=then_close)


async def never_ending(port: int) -> tuple[list[Event], bool]:
    """10 s of speech at 8x real time, and no audio-stop: the stream ends at WYOMING_MAX_UTTERANCE_S (3 s) with the
    transcript so far (the client stops uploading once it has it, as Home Assistant does; the log line says the
    server closed the connection)."""
    run = await wy.transcribe(HOST, port, pcm_s16le(BECKETT), speed=8.0, send_stop=False)
    return [e.event for e in run.events], True


async def two_sessions(port: int) -> tuple[list[Event], bool]:
    """REALTIME_MAX_SESSIONS=1: a second stream while one is open is refused."""
    async with AsyncTcpClient(HOST, port) as first:
        await first.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        assert (await asyncio.wait_for(first.read_event(), 10)).type == "transcript-start"  # type: ignore[union-attr]
        events, closed = await raw_session(port, START)
        await first.write_event(AudioStop().event())
        return events, closed


HOSTILE: dict[str, tuple[Hostile, str, bool]] = {  # name: (client, the error code, the server closes)
    "not JSON": (sends(b"{this is not json\n"), "invalid_json", True),
    "a JSON list": (sends(b"[1, 2, 3]\n"), "invalid_json", True),
    "no type": (sends(b'{"data": {}}\n'), "invalid_header", True),
    "binary garbage": (sends(bytes(range(256)) + b"\n"), "invalid_json", True),
    "a header over 64 KiB": (sends(b'{"type": "' + b"x" * 70_000), "too_large", True),
    "negative payload length": (sends(header("audio-chunk", payload_length=-5)), "invalid_header", True),
    "data that is not an object": (sends(b'{"type": "transcribe", "data": 5}\n'), "invalid_header", True),
    "data_length over 1 MiB": (sends(header("transcribe", data_length=50_000_000)), "too_large", True),
    "a 10 MB chunk": (sends(START + chunk(bytes(10_000_000))), "too_large", True),
    "payload length larger than sent": (sends(START + chunk(b"\x00" * 100)[:-60]), "idle_timeout", True),
    "payload length smaller than sent": (
        sends(
            START
            + header("audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, payload_length=4)
            + b"x" * 40
            + b"\n"
        ),
        "invalid_json",
        True,
    ),
    "silence, never an event": (sends(b""), "idle_timeout", True),
    "audio before audio-start": (sends(chunk(b"\x00" * 2048)), "audio_not_started", False),
    "audio-stop before audio-start": (sends(header("audio-stop")), "audio_not_started", False),
    "transcribe with wrong types": (
        sends(header("transcribe", {"name": 5, "transcript_names": "x"})),
        "invalid_value",
        True,
    ),
    "an unknown model": (sends(header("transcribe", {"name": "gpt-9"})), "model_not_found", True),
    "a language that is not one": (sends(header("transcribe", {"language": "12-34"})), "invalid_request", True),
    "an impossible audio format": (
        sends(header("audio-start", {"rate": 16000, "width": 7, "channels": 0})),
        "invalid_request",
        True,
    ),
    "a never-ending utterance": (never_ending, "", True),
    "two live sessions at once": (two_sessions, "session_limit", True),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_client_gets_an_error_event_and_the_server_stays_healthy(strict: WyomingServer, name: str) -> None:
    client, code, closes = HOSTILE[name]
    events, closed = asyncio.run(client(strict.port))
    if name == "a never-ending utterance":  # the transcript of what was heard, then the end of the connection
        assert [e.type for e in events][-2:] == ["transcript", "transcript-stop"] and closed
        deadline = time.monotonic() + 5  # the line is written once the connection has ended
        while not any("outcome=max_utterance" in line for line in strict.wyoming_lines()):
            assert time.monotonic() < deadline, strict.wyoming_lines()
            time.sleep(0.05)
        assert 0 < len(events[-2].data["text"]) < len(BECKETT_TEXT) / 2
    else:
        errors = [e for e in events if e.type == "error"]
        assert errors and errors[0].data["code"] == code, events
        assert errors[0].data["text"]
        assert closed is closes, events
    assert httpx.get(f"{strict.http.url}/health", timeout=10).status_code == 200


def test_after_the_hostile_clients_the_server_still_transcribes(strict: WyomingServer) -> None:
    asyncio.run(raw_session(strict.port, START + chunk(b"\x01" * 3000), then_close=True))  # gone mid-stream
    deadline = time.monotonic() + 10
    while strict.metric("stt_wyoming_connections") or strict.metric("stt_realtime_sessions"):
        assert time.monotonic() < deadline, "connections or live sessions left open"
        time.sleep(0.1)
    info = asyncio.run(wy.describe(HOST, strict.port))
    assert [m.name for m in info.asr[0].models] == ["tiny.en"]
    run = asyncio.run(wy.transcribe(HOST, strict.port, pcm_s16le(BECKETT)[: 16000 * 2 * 3], speed=4.0))
    assert run.of("transcript")
    log = strict.http.log()
    assert "Traceback" not in log and "internal_error" not in log
    assert strict.metric('stt_wyoming_connections_ended_total{outcome="protocol_error"}') >= 8


def test_ping_and_events_for_other_services_are_answered_or_dropped(strict: WyomingServer) -> None:
    events, closed = asyncio.run(
        raw_session(strict.port, header("synthesize", {"text": "hi"}) + header("ping", {"text": "x"}))
    )
    assert [e.type for e in events] == ["pong", "error"] and events[0].data["text"] == "x"
    assert events[1].data["code"] == "idle_timeout" and closed  # then nothing for REALTIME_IDLE_TIMEOUT_S
