"""Merge raw speech regions into engine chunks, incrementally (seed 004's 15/22/30 s semantics).

Rules, for each next region (all lengths are of raw speech, from the chunk's first region start to its last end):

- a chunk shorter than `min` keeps growing, unless the next region would take it past `max`;
- between `min` and `max`, the chunk is cut at the first pause of at least `new_chunk_gap`;
- a chunk never grows past `max`; a single region longer than `strict` (the segmenter normally splits those at
  their least speech-like point) is split evenly into pieces of at most `strict`.

Each chunk is then padded by `pad` on both sides, but never past the middle of the gap to its neighbour, nor
before 0 or past the end of the audio: chunks never overlap, and a hard split inside speech gets no padding.
`strict` and `max` are reduced by `2 * pad` so that padded chunks stay within the limits too.

A chunk is emitted as soon as it is final: when the next region decides it, or when `advance(horizon)` (no future
region starts before `horizon`) proves that it cannot grow any more. So only the open chunk's audio needs to be
kept, whatever the length of the file; long silences make no chunk.
"""

from __future__ import annotations

import itertools
import math

import msgspec

from app.audio.types import SAMPLE_RATE
from app.audio.vad import VAD_MIN_SILENCE, SpeechRegion

CHUNK_PADDING = 0.2  # seconds of context added around each chunk (never past the middle of a pause)


class Chunking(msgspec.Struct, frozen=True, kw_only=True):
    """One request's VAD and chunker choices (OpenAI's `chunking_strategy`); the defaults are the server's own."""

    threshold: float | None = None  # Silero speech probability; None: VAD_THRESHOLD
    min_silence_seconds: float = VAD_MIN_SILENCE  # a pause this long ends a speech region
    padding_seconds: float = CHUNK_PADDING  # context added around each chunk (never past the middle of a pause)


class Chunk(msgspec.Struct, frozen=True):
    """Audio to give the engine, in samples: [start, end), padding included."""

    start: int
    end: int

    @property
    def duration(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


class Chunker:
    def __init__(
        self,
        *,
        min_duration: float = 15.0,
        max_duration: float = 22.0,
        strict_limit: float = 30.0,
        new_chunk_threshold: float = 0.2,
        pad: float = 0.2,
    ) -> None:
        if not 0 < min_duration <= max_duration <= strict_limit:
            raise ValueError("0 < min_duration <= max_duration <= strict_limit must hold")
        pad_samples = round(pad * SAMPLE_RATE)
        self.strict = round(strict_limit * SAMPLE_RATE) - 2 * pad_samples
        if self.strict < SAMPLE_RATE // 10:
            raise ValueError("strict_limit leaves no room for speech after padding")
        self.max = min(round(max_duration * SAMPLE_RATE), self.strict)
        self.min = min(round(min_duration * SAMPLE_RATE), self.max)
        self.gap = round(new_chunk_threshold * SAMPLE_RATE)
        self.pad = pad_samples
        self._start: int | None = None  # open chunk's raw extent
        self._end = 0
        self._last_end = 0  # end of the last emitted chunk (padding included)

    def push(self, region: SpeechRegion) -> list[Chunk]:
        """Add the next region (in time order, not overlapping earlier ones); return the chunks it completes."""
        if region.end <= region.start:
            return []
        if region.end - region.start > self.strict:
            pieces = math.ceil((region.end - region.start) / self.strict)
            bounds = [region.start + (region.end - region.start) * i // pieces for i in range(pieces + 1)]
            out: list[Chunk] = []
            for a, b in itertools.pairwise(bounds):
                out += self.push(SpeechRegion(a, b))
            return out
        if self._start is None:
            self._start, self._end = region.start, region.end
            return []
        length = self._end - self._start
        pause = region.start - self._end
        if region.end - self._start > self.max or (length >= self.min and pause >= self.gap):
            chunk = self._close(min(self._end + self.pad, (self._end + region.start) // 2))
            self._start, self._end = region.start, region.end
            return [chunk]
        self._end = region.end
        return []

    def advance(self, horizon: int, *, next_start: int | None = None, min_end: int | None = None) -> list[Chunk]:
        """Emit the open chunk if no future region can change it.

        The caller promises: no region will start before `horizon`; the next region starts exactly at
        `next_start` if that is given; the next region ends at or after `min_end` (default `horizon`), or, if it
        is longer than the strict limit, its first piece does (`SpeechSegmenter` with `max_speech` <= the strict
        limit never emits such regions). The result is the same as if the chunk had been closed by `push`.
        """
        if self._start is None:
            return []
        future_end = max(min_end if min_end is not None else horizon, horizon)
        will_cut = future_end - self._start > self.max or (
            self._end - self._start >= self.min and horizon - self._end >= self.gap
        )
        if not will_cut:
            return []
        if next_start is not None:
            return [self._close(min(self._end + self.pad, (self._end + next_start) // 2))]
        if horizon >= self._end + 2 * self.pad:
            return [self._close(self._end + self.pad)]
        return []

    def finish(self, total_samples: int) -> list[Chunk]:
        """The audio ended at `total_samples`: emit the open chunk."""
        if self._start is None:
            return []
        return [self._close(min(self._end + self.pad, max(total_samples, self._end)))]

    def keep_from(self, horizon: int) -> int:
        """The earliest sample a future chunk can contain, given that no region will start before `horizon`."""
        if self._start is not None:
            return max(self._start - self.pad, self._last_end, 0)
        return max(horizon - self.pad, self._last_end, 0)

    def _close(self, end: int) -> Chunk:
        assert self._start is not None
        chunk = Chunk(max(self._start - self.pad, self._last_end, 0), end)
        self._last_end = end
        self._start = None
        return chunk


def chunk_regions(regions: list[SpeechRegion], total_samples: int, **options: float) -> list[Chunk]:
    """All chunks of a complete list of regions (convenience for tests and tools)."""
    chunker = Chunker(**options)
    chunks = [c for r in regions for c in chunker.push(r)]
    return chunks + chunker.finish(total_samples)
