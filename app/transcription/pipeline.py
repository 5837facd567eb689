"""Audio file -> decoded 16 kHz windows -> speech regions (`app.audio.regions`) -> chunks -> engine batches ->
absolute segments.

Memory stays bounded: the file is decoded one window (`window_seconds`) at a time, and a buffer keeps only the
audio that may still become part of a chunk (the open chunk, or the open speech region, plus a little padding).
Its size is bounded by one window plus the strict chunk limit, whatever the length of the file; finished chunks
wait for a batch (at most `batch_size` of them) and are then dropped.

The VAD and the chunker are incremental and carry their state across windows, so the chunks (and therefore the
text) do not depend on `window_seconds`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import msgspec

from app.audio.chunking import Chunk, Chunker, Chunking
from app.audio.decode import AudioDecoder
from app.audio.regions import RegionStream
from app.audio.types import SAMPLE_RATE, Audio
from app.audio.vad import VAD_MIN_SPEECH, SileroVad, SpeechSegmenter, load_vad
from app.engines.protocol import Decoding, Engine
from app.settings import AudioSettings
from app.transcript import Segment, Word
from app.worker.cancel import CancelToken

WINDOW_SECONDS = 60.0  # decode window


class TranscriptionRun:
    """One file through decode -> region stream -> chunker -> engine batches, on the worker thread."""

    def __init__(
        self,
        path: Path,
        engine: Engine,
        decoding: Decoding,
        *,
        audio: AudioSettings,
        cancel: CancelToken,
        chunking: Chunking | None = None,
        vad: SileroVad | None = None,
        window_seconds: float = WINDOW_SECONDS,
        between_batches: Callable[[], None] | None = None,
        small_batches: Callable[[], bool] | None = None,
        progressed: Callable[[float], None] | None = None,
    ) -> None:
        self.path = path
        self.engine = engine
        self.decoding = decoding
        self.audio = audio
        self.window_seconds = window_seconds
        self.cancel = cancel
        self.vad = vad
        self.chunking = chunking or Chunking()
        # Padding on both sides must leave room for speech inside the strict limit.
        self.padding = min(self.chunking.padding_seconds, audio.vad_strict_limit / 4)
        self.duration = 0.0
        self.language: str | None = decoding.language
        self.stream: RegionStream | None = None  # the speech-region stream of the current pass
        # Called before each batch on the worker thread: the Runner runs waiting live utterances there.
        self.between_batches = between_batches
        # True while live work may arrive: batches of one chunk, so live work waits at most one chunk's decode.
        self.small_batches = small_batches
        # Told the seconds of audio transcribed so far after each batch (and the whole length at the end).
        self.progressed = progressed

    def _segmenter(self) -> SpeechSegmenter:
        a = self.audio
        threshold = a.vad_threshold if self.chunking.threshold is None else self.chunking.threshold
        return SpeechSegmenter(
            threshold=threshold,
            min_speech_seconds=VAD_MIN_SPEECH,
            min_silence_seconds=self.chunking.min_silence_seconds,
            # The segmenter splits over-long speech at its least speech-like point, leaving room for padding.
            max_speech_seconds=a.vad_strict_limit - 2 * self.padding,
            split_search_from_seconds=min(a.vad_min_duration, (a.vad_strict_limit - 2 * self.padding) / 2),
        )

    def _chunker(self) -> Chunker:
        a = self.audio
        return Chunker(
            min_duration=a.vad_min_duration,
            max_duration=a.vad_max_duration,
            strict_limit=a.vad_strict_limit,
            new_chunk_threshold=a.vad_new_chunk_threshold,
            pad=self.padding,
        )

    def chunk_stream(self) -> Generator[tuple[Chunk, Audio], None, None]:
        """Decode -> speech regions -> chunker: each finished chunk with its audio, in order, as soon as it is
        final. Only the open chunk's audio is held (`Chunker.keep_from`)."""
        stream = self.stream = RegionStream((self.vad or load_vad()).stream(), self._segmenter())
        chunker = self._chunker()

        def cut(chunks: list[Chunk]) -> list[tuple[Chunk, Audio]]:
            return [(chunk, stream.audio(chunk.start, chunk.end)) for chunk in chunks]

        with AudioDecoder(self.path, max_seconds=self.audio.max_audio_seconds) as decoder:
            for block in decoder.blocks(self.window_seconds):
                regions = stream.feed(block)
                self.duration = decoder.decoded_seconds
                done = [chunk for region in regions for chunk in chunker.push(region)]
                done += chunker.advance(stream.horizon, next_start=stream.next_start, min_end=stream.min_future_end)
                ready = cut(done)
                stream.release_before(chunker.keep_from(stream.horizon))
                yield from ready
            self.duration = decoder.decoded_samples / SAMPLE_RATE
        done = [chunk for region in stream.finish() for chunk in chunker.push(region)] + chunker.finish(stream.end)
        ready = cut(done)
        stream.release_before(stream.end)
        yield from ready

    def first_speech(self) -> Audio | None:
        """The first chunk of speech (at most VAD_STRICT_LIMIT seconds), decoding only as far as it ends; None for
        a file without speech."""
        chunks = self.chunk_stream()
        try:
            return next((audio for _, audio in chunks), None)
        finally:
            chunks.close()  # stops decoding and closes the file

    def segments(self) -> Iterator[Segment]:
        """Segments with absolute times, in order, yielded as each batch of chunks is recognised.

        Nothing reaches the engine for audio without speech: silent files give no segments. The first chunk goes
        to the engine alone, so a stream's first words arrive after one chunk's work, not after a whole batch's.
        """
        batch: list[tuple[Chunk, Audio]] = []
        batch_size = 1
        for item in self.chunk_stream():
            batch.append(item)
            if len(batch) >= batch_size:
                yield from self._recognise(batch)
                batch = []
                batch_size = 1 if self.small_batches is not None and self.small_batches() else self.audio.batch_size
        if batch:
            yield from self._recognise(batch)
        if self.progressed is not None:
            self.progressed(self.duration)

    def _recognise(self, batch: list[tuple[Chunk, Audio]]) -> Iterator[Segment]:
        if self.between_batches is not None:
            self.between_batches()
        self.cancel.raise_if_cancelled()
        results = self.engine.transcribe([audio for _, audio in batch], self.decoding)
        if len(results) != len(batch):
            raise RuntimeError(f"engine returned {len(results)} results for {len(batch)} chunks")
        for (chunk, _), result in zip(batch, results, strict=True):
            if result.language:
                self.language = result.language
            for segment in result.segments:
                yield _clamped(segment, chunk.duration).shifted(chunk.start / SAMPLE_RATE)
        if self.progressed is not None:
            self.progressed(batch[-1][0].end / SAMPLE_RATE)


def _clamped(segment: Segment, limit: float) -> Segment:
    """Keep chunk-relative times inside the chunk (decoders sometimes overshoot the end by a few ms)."""

    def clamp(t: float) -> float:
        return min(max(t, 0.0), limit)

    if segment.start >= 0.0 and segment.end <= limit and all(w.end <= limit and w.start >= 0 for w in segment.words):
        return segment
    words = tuple(Word(w.word, clamp(w.start), clamp(w.end), w.probability) for w in segment.words)
    return msgspec.structs.replace(segment, start=clamp(segment.start), end=clamp(segment.end), words=words)
