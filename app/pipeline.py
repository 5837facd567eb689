"""PROVISIONAL pipeline (replaced by branch `audio`): decode all, fixed 30 s chunks, no VAD."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec

from app.cancel import CancelToken
from app.engines.base import SAMPLE_RATE, Engine
from app.errors import InvalidRequest
from app.transcript import Segment, Task


class PipelineConfig(msgspec.Struct, frozen=True, kw_only=True):
    batch_size: int = 4
    vad_threshold: float = 0.5
    vad_min_duration: float = 15.0
    vad_max_duration: float = 22.0
    vad_strict_limit: float = 30.0
    vad_new_chunk_threshold: float = 0.2
    max_audio_seconds: float = 0.0
    window_seconds: float = 60.0


class TranscriptionRun:
    def __init__(
        self,
        path: Path,
        engine: Engine,
        *,
        language: str | None,
        task: Task,
        prompt: str | None,
        config: PipelineConfig,
        cancel: CancelToken,
    ) -> None:
        self.path, self.engine, self.task, self.prompt, self.config, self.cancel = (
            path,
            engine,
            task,
            prompt,
            config,
            cancel,
        )
        self.language = language
        self.duration = 0.0

    def segments(self) -> Iterator[Segment]:
        from faster_whisper.audio import decode_audio

        try:
            audio = decode_audio(str(self.path))
        except Exception:
            raise InvalidRequest("Could not decode audio file", param="file") from None
        if len(audio) == 0:
            raise InvalidRequest("Audio file is empty", param="file")
        self.duration = len(audio) / SAMPLE_RATE
        step = 30 * SAMPLE_RATE
        for offset in range(0, len(audio), step):
            self.cancel.raise_if_cancelled()
            result = self.engine.transcribe(
                [audio[offset : offset + step]], language=self.language, task=self.task, prompt=self.prompt
            )[0]
            self.language = result.language or self.language
            for s in result.segments:
                yield s.shifted(offset / SAMPLE_RATE)
