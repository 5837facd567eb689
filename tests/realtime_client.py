"""A Realtime transcription client for tests and benchmarks: a recording sent as PCM16 at 24 kHz, paced at real time,
over `websockets`, every server event kept with the moment it arrived and the audio sent by then."""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import websockets

RATE = 24000


def pcm24k(path: Path, *, silence_after: float = 0.0) -> bytes:
    """The recording as PCM16 little-endian mono at 24 kHz, with `silence_after` seconds of silence appended."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    parts: list[bytes] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray().tobytes())
    for out in resampler.resample(None):
        parts.append(out.to_ndarray().tobytes())
    return b"".join(parts) + bytes(2 * round(silence_after * RATE))


class Received:
    def __init__(self, at: float, audio_sent: float, event: dict[str, Any]) -> None:
        self.at = at  # monotonic time of arrival
        self.audio_sent = audio_sent  # seconds of audio sent by then
        self.event = event

    @property
    def type(self) -> str:
        return str(self.event["type"])


def ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://", 1) + "/v1/realtime?intent=transcription"


MAX_SETTLE_SECONDS = 120.0


async def stream(
    url: str,
    pcm: bytes,
    *,
    session: dict[str, Any] | None = None,
    chunk_seconds: float = 0.1,
    speed: float = 1.0,
    settle_seconds: float = 8.0,
    headers: dict[str, str] | None = None,
    subprotocols: Sequence[str] | None = None,
) -> list[Received]:
    """Connect, send `session.update` (when given), send `pcm` paced at `speed` x real time, then wait until every
    committed item has completed (at most `settle_seconds` after the last audio)."""
    events: list[Received] = []
    sent = 0.0
    async with websockets.connect(
        url,
        additional_headers=headers,
        subprotocols=[websockets.Subprotocol(p) for p in subprotocols] if subprotocols else None,
        max_size=None,
    ) as socket:

        async def reader() -> None:
            async for message in socket:
                events.append(Received(time.monotonic(), sent, json.loads(message)))

        reading = asyncio.create_task(reader())
        if session is not None:
            await socket.send(json.dumps({"type": "session.update", "session": session}))
        step = int(chunk_seconds * RATE) * 2
        started = time.monotonic()
        for offset in range(0, len(pcm), step):
            block = pcm[offset : offset + step]
            await socket.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(block).decode()})
            )
            sent = (offset + len(block)) / 2 / RATE
            delay = started + sent / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        # Wait for what was heard, however slow the machine: until every utterance that started is committed and
        # every committed item has its final event (at most MAX_SETTLE_SECONDS); with nothing heard, settle_seconds.
        quiet_until = time.monotonic() + settle_seconds
        deadline = time.monotonic() + MAX_SETTLE_SECONDS
        while time.monotonic() < deadline:
            heard = {e.event["item_id"] for e in events if e.type == "input_audio_buffer.speech_started"}
            committed = {e.event["item_id"] for e in events if e.type == "input_audio_buffer.committed"}
            done = {
                e.event["item_id"]
                for e in events
                if e.type.startswith("conversation.item.input_audio_transcription.") and not e.type.endswith("delta")
            }
            if committed and committed <= done and heard <= committed:
                break
            if (not heard and not committed and time.monotonic() > quiet_until) or reading.done():
                break  # nothing heard; or the server closed the session: nothing more will come
            await asyncio.sleep(0.05)
        await socket.close()
        reading.cancel()
    return events


class Figures:
    """Live latency of one run: speech_stopped -> completed per item, speech_started -> first delta per item."""

    def __init__(self, events: list[Received]) -> None:
        stopped = {e.event["item_id"]: e.at for e in events if e.type == "input_audio_buffer.speech_stopped"}
        started = {e.event["item_id"]: e.at for e in events if e.type == "input_audio_buffer.speech_started"}
        completed = {
            e.event["item_id"]: e.at
            for e in events
            if e.type == "conversation.item.input_audio_transcription.completed"
        }
        first_delta: dict[str, float] = {}
        for e in events:
            if e.type == "conversation.item.input_audio_transcription.delta":
                first_delta.setdefault(e.event["item_id"], e.at)
        self.latencies = [completed[i] - stopped[i] for i in stopped if i in completed]
        self.first_partials = [first_delta[i] - started[i] for i in started if i in first_delta]
        self.transcripts = [
            e.event["transcript"] for e in events if e.type == "conversation.item.input_audio_transcription.completed"
        ]

    @property
    def text(self) -> str:
        return " ".join(t.strip() for t in self.transcripts if t.strip())

    @staticmethod
    def describe(values: list[float]) -> str:
        if not values:
            return "n/a"
        return (
            f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
        )

    @staticmethod
    def median(values: list[float]) -> float:
        return float(np.median(values)) if values else float("nan")
