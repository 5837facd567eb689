"""A Wyoming speech-to-text client for tests and benchmarks, as Home Assistant's integration drives the server: the
reference library's `AsyncTcpClient`, `transcribe` + `audio-start`, audio chunks paced at real time (uploaded while
events are read, as HA's `async_process_audio_stream` does), `audio-stop`; every server event kept with the moment
it arrived."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info

SAMPLES_PER_CHUNK = 1024  # what Home Assistant's tests and satellites send


class Received:
    def __init__(self, at: float, event: Event) -> None:
        self.at = at
        self.event = event

    @property
    def type(self) -> str:
        return self.event.type


class Run:
    """What one utterance sent and got back."""

    def __init__(self, events: list[Received], stopped_at: float) -> None:
        self.events = events
        self.stopped_at = stopped_at  # when audio-stop was written

    def of(self, kind: str) -> list[Received]:
        return [e for e in self.events if e.type == kind]

    @property
    def transcript(self) -> Transcript:
        (final,) = self.of("transcript")
        return Transcript.from_event(final.event)

    @property
    def latency(self) -> float:
        """audio-stop -> transcript, seconds."""
        return self.of("transcript")[0].at - self.stopped_at

    @property
    def chunks_before_stop(self) -> list[str]:
        return [e.event.data["text"] for e in self.of("transcript-chunk") if e.at < self.stopped_at]

    @property
    def chunk_text(self) -> str:
        return "".join(e.event.data["text"] for e in self.of("transcript-chunk"))


async def describe(host: str, port: int) -> Info:
    async with AsyncTcpClient(host, port) as client:
        await client.write_event(Describe().event())
        while True:
            event = await asyncio.wait_for(client.read_event(), 30)
            assert event is not None, "connection closed before info"
            if Info.is_type(event.type):
                return Info.from_event(event)


async def transcribe(
    host: str,
    port: int,
    audio: bytes,
    *,
    rate: int = 16000,
    width: int = 2,
    channels: int = 1,
    speed: float = 1.0,
    send_stop: bool = True,
    wait_seconds: float = 120.0,
    **request: Any,
) -> Run:
    """Send `audio` in chunks of SAMPLES_PER_CHUNK frames at `speed` x real time, then audio-stop (unless not
    `send_stop`), reading meanwhile until transcript-stop or an error (then the upload stops)."""
    events: list[Received] = []
    stopped_at = float("inf")
    async with AsyncTcpClient(host, port) as client:

        async def upload() -> None:
            nonlocal stopped_at
            await client.write_event(Transcribe(**request).event())
            await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
            step = SAMPLES_PER_CHUNK * width * channels
            started = time.monotonic()
            for offset in range(0, len(audio), step):
                block = audio[offset : offset + step]
                await client.write_event(AudioChunk(rate=rate, width=width, channels=channels, audio=block).event())
                delay = started + (offset + len(block)) / (width * channels * rate) / speed - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if send_stop:
                await client.write_event(AudioStop().event())
                stopped_at = time.monotonic()

        async def receive() -> None:
            while True:
                event = await client.read_event()
                if event is None:
                    return
                events.append(Received(time.monotonic(), event))
                if event.type == "transcript-stop" or Error.is_type(event.type):
                    return

        uploading = asyncio.create_task(upload())
        try:
            await asyncio.wait_for(receive(), wait_seconds)
        finally:
            if not uploading.done():  # the server answered before the audio ended (an error, a limit)
                uploading.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await uploading
    return Run(events, stopped_at)


def tone(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()
