"""Diarization as the API layer asks for it: an audio file in, speaker turns out, run on the worker.

The speaker encoder is a resident model (kind `speaker`) of the one residency manager.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from app.diarization.diarize import DiarizationSegment, diarize
from app.diarization.speaker_encoder import SpeakerEncoder
from app.diarization.speakers import KnownVoice, name_speakers
from app.worker.cancel import CancelToken
from app.worker.residency import ModelKey, Residency
from app.worker.runner import Runner

SPEAKER_ENCODER = ModelKey("speaker", "resemblyzer")


class Diarization(msgspec.Struct, frozen=True):
    segments: tuple[DiarizationSegment, ...]
    processing_seconds: float


class SpeakerTurns(msgspec.Struct, frozen=True):
    """Speaker turns of a file and which speaker ids are known voices (id -> name)."""

    segments: tuple[DiarizationSegment, ...]
    names: dict[int, str]
    processing_seconds: float


class Diarizer:
    def __init__(self, runner: Runner, residency: Residency, *, num_threads: int) -> None:
        self.runner = runner
        self.residency = residency
        self.num_threads = num_threads

    def encoder(self) -> SpeakerEncoder:
        """The resident speaker encoder. Worker thread only."""
        return self.residency.get(SPEAKER_ENCODER, lambda: None, lambda _: SpeakerEncoder.load(self.num_threads))

    async def who_spoke(self, path: Path, voices: list[KnownVoice], *, cancel: CancelToken) -> SpeakerTurns:
        """Speaker turns of `path`, with the found speakers that are `voices` named."""

        def work() -> SpeakerTurns:
            started = time.monotonic()
            encoder = self.encoder()
            segments = diarize(path, encoder, cancel=cancel)
            names = name_speakers(path, segments, voices, encoder, cancel)
            return SpeakerTurns(tuple(segments), names, time.monotonic() - started)

        return await self.runner.run(work, cancel)

    async def diarize(self, path: Path, *, offset: float, cancel: CancelToken) -> Diarization:
        def work() -> Diarization:
            started = time.monotonic()
            segments = diarize(path, self.encoder(), offset=offset, cancel=cancel)
            return Diarization(tuple(segments), time.monotonic() - started)

        return await self.runner.run(work, cancel)
