"""Hostile and careless live sessions (issue 26), through the real WebSocket: push-to-talk past ten minutes, a backlog
of committed audio, an endless prompt, a session that waits for a long transcription, and a client that leaves in
the middle of one."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.audio_factory import tiled_wav
from tests.realtime_client import RATE, pcm24k, ws_url
from tests.server import AUDIO, ServerProcess, tiny_server

IDLE_SECONDS = 10.0  # pings every 5 s, 5 s to answer: room for a 28 MB append on a loaded machine
PIECE_SECONDS = 28  # a committed item is transcribed in pieces of this length (live.MANUAL_PIECE_SECONDS)
MANUAL = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {"turn_detection": None}}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A short idle timeout (the time a dead socket is kept): a silent live session waiting for its transcription
    stays."""
    env = {"REALTIME_IDLE_TIMEOUT_S": str(IDLE_SECONDS)}
    with tiny_server(tmp_path_factory.mktemp("hostile-live"), **env) as server:
        yield server


@pytest.fixture(scope="module")
def patient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The default idle timeout: sessions that wait for a long transcription stay open (whatever the idle rule)."""
    with tiny_server(tmp_path_factory.mktemp("patient-live")) as server:
        yield server


@pytest.fixture(scope="module")
def speech_pcm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """590 s of speech (beckett.wav repeated) as PCM16 at 24 kHz: just under the input buffer's 600 s."""
    folder = tmp_path_factory.mktemp("live-speech")
    return pcm24k(tiled_wav(AUDIO / "beckett.wav", folder / "long.wav", 590))


def seconds(pcm: bytes, length: float) -> bytes:
    return pcm[: round(length * RATE) * 2]


class Session:
    """One live session: events sent as they are given, every server event kept with its arrival time."""

    def __init__(self, socket: websockets.ClientConnection) -> None:
        self.socket = socket
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            self.events.append((time.monotonic(), json.loads(message)))

    async def send(self, event: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(event))

    async def append(self, pcm: bytes) -> None:
        step = RATE * 2  # one second per event
        for offset in range(0, len(pcm), step):
            audio = base64.b64encode(pcm[offset : offset + step]).decode()
            await self.send({"type": "input_audio_buffer.append", "audio": audio})

    async def commit(self, pcm: bytes) -> float:
        """Append `pcm` and commit it; the moment of the commit."""
        await self.append(pcm)
        await self.send({"type": "input_audio_buffer.commit"})
        return time.monotonic()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for _, event in self.events if event["type"] == kind]

    def index(self, predicate: Any) -> int:
        return next(i for i, (_, event) in enumerate(self.events) if predicate(event))

    async def until(self, predicate: Any, within: float) -> float:
        """The arrival time of the first event `predicate` accepts (waiting at most `within` seconds for it)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for at, event in self.events:
                if predicate(event):
                    return at
            if self._reader.done():
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"no such event; got {[e['type'] for _, e in self.events]}")


def completed(event: dict[str, Any]) -> bool:
    return str(event["type"]).endswith("transcription.completed")


def error(code: str) -> Any:
    return lambda event: event["type"] == "error" and event["error"]["code"] == code


def test_push_to_talk_lives_past_ten_minutes_and_its_backlog_is_bounded(
    patient_server: ServerProcess, speech_pcm: bytes
) -> None:
    # the default idle limit: a pong waits behind the 38 MB this client sends (a loaded server reads it slowly)
    server = patient_server

    async def scenario() -> Session:
        async with websockets.connect(ws_url(server.url), max_size=None) as socket:
            session = Session(socket)
            await session.send(MANUAL)
            await session.commit(speech_pcm)  # 590 s: its transcription takes many pieces
            await session.append(seconds(speech_pcm, 20))  # 610 s since the session began
            await session.send({"type": "input_audio_buffer.commit", "event_id": "evt_second"})
            await session.until(error("transcription_backlog"), within=30)
            return session  # leaving: the transcription still running is cancelled

    session = asyncio.run(scenario())
    errors = [event["error"] for event in session.of_type("error")]
    # the committed 590 s left the input buffer, so the next 20 s fit (before: input_audio_buffer_full)
    assert [e["code"] for e in errors] == ["transcription_backlog"], errors
    # 590 s waiting and 20 more would make 610: refused, the 20 s kept in the input buffer for a later commit
    assert errors[0]["event_id"] == "evt_second" and "600 s" in errors[0]["message"]
    assert len(session.of_type("input_audio_buffer.committed")) == 1
    assert not any(completed(event) for _, event in session.events)  # refused while the first was in progress
    server.wait_until_idle()


def test_a_session_waiting_for_its_transcription_stays_open(server: ServerProcess, speech_pcm: bytes) -> None:
    """A client that commits a long item and then sends nothing: its session is not closed while the item is
    transcribed, nor after (a silent session lives while its socket answers pings, ADR 44)."""

    async def scenario() -> tuple[Session, bool]:
        async with websockets.connect(ws_url(server.url), max_size=None) as socket:
            session = Session(socket)
            await session.send(MANUAL)
            await session.commit(seconds(speech_pcm, 4 * PIECE_SECONDS))
            silent_since = time.monotonic()
            await session.until(completed, within=600)  # nothing more from the client meanwhile
            await asyncio.sleep(max(0.0, silent_since + 1.5 * IDLE_SECONDS - time.monotonic()))  # longer than IDLE
            return session, socket.state is websockets.State.OPEN

    session, still_open = asyncio.run(scenario())
    transcript = session.of_type("conversation.item.input_audio_transcription.completed")[0]["transcript"]
    assert "fail" in transcript.lower()
    assert still_open and session.of_type("error") == []


def test_a_realtime_prompt_is_capped_like_the_forms(server: ServerProcess) -> None:
    def update(prompt: str, *, beta: bool = False) -> dict[str, Any]:
        if beta:
            return {
                "type": "transcription_session.update",
                "session": {"input_audio_transcription": {"prompt": prompt}},
            }
        transcription = {"transcription": {"prompt": prompt}}
        return {"type": "session.update", "session": {"type": "transcription", "audio": {"input": transcription}}}

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(server.url), max_size=None) as socket:
            session = Session(socket)
            for event in (update("x" * 70_000), update("x" * 70_000, beta=True), update("Samuel Beckett, Worstward")):
                await session.send(event)
            await session.until(lambda e: e["type"] == "session.updated", within=10)
            return [event for _, event in session.events]

    events = asyncio.run(scenario())
    assert [e["type"] for e in events] == ["session.created", "error", "error", "session.updated"]
    assert events[1]["error"]["param"] == "audio.input.transcription.prompt"
    assert events[2]["error"]["param"] == "input_audio_transcription.prompt"
    assert {e["error"]["code"] for e in events[1:3]} == {"string_above_max_length"}
    assert events[3]["session"]["audio"]["input"]["transcription"]["prompt"] == "Samuel Beckett, Worstward"


def transcribe_file(server: ServerProcess, path: Path) -> float:
    started = time.monotonic()
    files = {"file": (path.name, path.read_bytes(), "audio/wav")}
    response = httpx.post(f"{server.url}/v1/audio/transcriptions", files=files, timeout=600)
    assert response.status_code == 200, response.text
    return time.monotonic() - started


def test_a_live_transcription_stops_when_its_client_leaves(patient_server: ServerProcess, speech_pcm: bytes) -> None:
    server = patient_server

    async def commit(pcm: bytes, *, leave: bool) -> float:
        """Commit `pcm`; wait for its transcript (the seconds it took), or leave once it is committed."""
        async with websockets.connect(ws_url(server.url), max_size=None) as socket:
            session = Session(socket)
            await session.send(MANUAL)
            committed_at = await session.commit(pcm)
            await session.until(lambda e: e["type"] == "input_audio_buffer.committed", within=30)
            return 0.0 if leave else await session.until(completed, within=600) - committed_at

    # on this machine: a file on an idle worker, and one piece of a live item
    alone = transcribe_file(server, AUDIO / "beckett.wav")
    piece = asyncio.run(commit(seconds(speech_pcm, PIECE_SECONDS), leave=False))
    asyncio.run(commit(seconds(speech_pcm, 8 * PIECE_SECONDS), leave=True))
    # a file sent as the client leaves waits for the piece being transcribed at most, not for the other seven
    waited = transcribe_file(server, AUDIO / "beckett.wav")
    assert waited < alone + 3 * piece, f"waited {waited:.1f} s; alone {alone:.1f} s, one piece {piece:.1f} s"
