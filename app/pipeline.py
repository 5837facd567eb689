"""Audio file -> decoded 16 kHz windows -> Silero VAD -> chunks -> engine batches -> absolute segments.

PLACEHOLDER INTERFACE (being implemented on branch `audio`): the signatures below are the contract the API layer
uses. Memory stays bounded: nothing holds the whole file as samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec

from app.cancel import CancelToken
from app.engines.base import Engine
from app.transcript import Segment, Task


class PipelineConfig(msgspec.Struct, frozen=True, kw_only=True):
    batch_size: int = 4
    vad_threshold: float = 0.5
    vad_min_duration: float = 15.0
    vad_max_duration: float = 22.0
    vad_strict_limit: float = 30.0
    vad_new_chunk_threshold: float = 0.2
    max_audio_seconds: float = 0.0  # 0 = no limit
    window_seconds: float = 60.0  # decode window; tests make it small to exercise window edges


class TranscriptionRun:
    """One transcription of one file. Iterate `segments()`; afterwards `duration` and `language` are final."""

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
        raise NotImplementedError

    duration: float
    language: str | None

    def segments(self) -> Iterator[Segment]:
        raise NotImplementedError
