"""Diarization as the API layer asks for it: an audio file in, speaker turns out, run on the worker.

The speaker encoder is a resident model (kind `speaker`) of the one residency manager.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from app.diarization.diarize import DiarizationSegment, diarize
from app.diarization.speaker_encoder import SpeakerEncoder
from app.worker.cancel import CancelToken
from app.worker.residency import ModelKey, Residency
from app.worker.runner import Runner

SPEAKER_ENCODER = ModelKey("speaker", "resemblyzer")


class Diarization(msgspec.Struct, frozen=True):
    segments: tuple[DiarizationSegment, ...]
    processing_seconds: float


class Diarizer:
    def __init__(self, runner: Runner, residency: Residency, *, num_threads: int) -> None:
        self.runner = runner
        self.residency = residency
        self.num_threads = num_threads

    async def diarize(self, path: Path, *, offset: float, cancel: CancelToken) -> Diarization:
        def work() -> Diarization:
            started = time.monotonic()
            encoder = self.residency.get(SPEAKER_ENCODER, lambda: None, lambda _: SpeakerEncoder.load(self.num_threads))
            segments = diarize(path, encoder, offset=offset, cancel=cancel)
            return Diarization(tuple(segments), time.monotonic() - started)

        return await self.runner.run(work, cancel)
