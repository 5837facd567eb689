"""Decode any file FFmpeg understands into 16 kHz mono float32 blocks, incrementally, with bounded memory.

PyAV bundles FFmpeg's libraries, so no system ffmpeg is needed. The file is read packet by packet and resampled as
it goes; at most one block (plus the resampler's small backlog) is in memory at a time.

    with AudioDecoder(path, max_seconds=3600) as audio:   # raises InvalidInput for unusable files
        audio.declared_duration                             # seconds from the container header, or None
        for block in audio.blocks(block_seconds=60): ...    # float32 arrays; all but the last are full
        audio.decoded_seconds                               # final after iteration
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import av
import av.container
import numpy as np

from app.audio.types import SAMPLE_RATE, Audio
from app.errors import InvalidInput

log = logging.getLogger(__name__)

# Container headers round durations; an early rejection needs a clear excess. Decoding enforces the exact limit.
_DECLARED_SLACK_SECONDS = 1.0


def _too_long(seconds: float, limit: float) -> InvalidInput:
    return InvalidInput(
        f"Audio is {seconds:.0f} s long; the limit is {limit:.0f} s (MAX_AUDIO_SECONDS)",
        about="audio",
        code="audio_too_long",
    )


class AudioDecoder:
    """One audio file opened for decoding. Use as a context manager (or call `close()`)."""

    def __init__(self, path: Path, *, max_seconds: float = 0.0) -> None:
        self.path = path
        self.max_seconds = max_seconds
        self.decoded_samples = 0
        self.skipped_packets = 0
        if not path.is_file() or path.stat().st_size == 0:
            raise InvalidInput("Audio file is empty", about="audio", code="empty_audio")
        try:
            container = av.open(str(path), mode="r", metadata_errors="ignore")
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            log.info("audio open failed: %s", type(exc).__name__)
            raise InvalidInput(
                "Could not decode audio file: it is not a media format FFmpeg can read",
                about="audio",
                code="invalid_audio",
            ) from None
        self._container: av.container.InputContainer = container
        if not container.streams.audio:
            container.close()
            raise InvalidInput("File contains no audio stream", about="audio", code="no_audio_stream")
        self._stream = container.streams.audio[0]
        self.declared_duration = self._declared_duration()
        if (
            max_seconds > 0
            and self.declared_duration is not None
            and self.declared_duration > max_seconds + _DECLARED_SLACK_SECONDS
        ):
            container.close()
            raise _too_long(self.declared_duration, max_seconds)

    def _declared_duration(self) -> float | None:
        stream = self._stream
        if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
            return float(stream.duration * stream.time_base)
        if self._container.duration is not None and self._container.duration > 0:
            return self._container.duration / av.time_base
        return None

    @property
    def decoded_seconds(self) -> float:
        return self.decoded_samples / SAMPLE_RATE

    def __enter__(self) -> AudioDecoder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def _frames(self) -> Iterator[Audio]:
        """Resampled mono float32 pieces of arbitrary length, in order."""
        resampler: av.AudioResampler | None = None
        source_format: tuple[str, str, int] | None = None
        stream = self._stream
        try:
            for packet in self._container.demux(stream):
                try:
                    frames = packet.decode()
                except av.InvalidDataError:
                    # A corrupt packet: FFmpeg's own tools skip it and go on; so do we.
                    self.skipped_packets += 1
                    continue
                for frame in frames:
                    fmt = (frame.format.name, frame.layout.name, frame.sample_rate)
                    if resampler is None or fmt != source_format:
                        # The stream changed format mid-way (rare; e.g. concatenated MP3s): drain and restart.
                        if resampler is not None:
                            yield from _to_arrays(resampler.resample(None))
                        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
                        source_format = fmt
                    yield from _to_arrays(resampler.resample(frame))
        except av.FFmpegError as exc:
            # A broken or truncated tail: keep what decoded; the caller decides whether that is nothing.
            log.warning("audio decoding stopped early (%s) after %.1f s", type(exc).__name__, self.decoded_seconds)
            self.skipped_packets += 1
        if resampler is not None:
            yield from _to_arrays(resampler.resample(None))

    def blocks(self, block_seconds: float = 60.0) -> Iterator[Audio]:
        """Yield float32 blocks of `block_seconds` (the last may be shorter) until the end of the audio.

        Raises InvalidInput if nothing decodes, or once the audio exceeds `max_seconds` (when > 0).
        """
        block_samples = max(1, round(block_seconds * SAMPLE_RATE))
        limit_samples = round(self.max_seconds * SAMPLE_RATE) if self.max_seconds > 0 else 0
        pending: list[Audio] = []
        pending_samples = 0
        for piece in self._frames():
            if piece.size == 0:
                continue
            self.decoded_samples += piece.size
            if limit_samples and self.decoded_samples > limit_samples:
                # The header understated the length (or had none): reject as soon as we know.
                raise _too_long(self.declared_duration or self.decoded_seconds, self.max_seconds)
            pending.append(piece)
            pending_samples += piece.size
            while pending_samples >= block_samples:
                joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
                yield joined[:block_samples]
                rest = joined[block_samples:]
                pending = [rest] if rest.size else []
                pending_samples = rest.size
        if pending_samples:
            yield np.concatenate(pending) if len(pending) > 1 else pending[0]
        if self.decoded_samples == 0:
            if self.skipped_packets or (self.declared_duration or 0.0) > 0.1:
                # Bad packets, or a header promising audio that none of the data delivered.
                raise InvalidInput(
                    "Could not decode audio file: its audio stream is corrupt", about="audio", code="invalid_audio"
                )
            raise InvalidInput("Audio file is empty", about="audio", code="empty_audio")


def _to_arrays(frames: list[av.AudioFrame]) -> Iterator[Audio]:
    for frame in frames:
        data = frame.to_ndarray()
        yield np.ascontiguousarray(data.reshape(-1), dtype=np.float32)


def probe_audio(path: Path, max_seconds: float = 0.0) -> float | None:
    """Check that `path` opens as audio within the declared-duration limit; return the declared duration."""
    with AudioDecoder(path, max_seconds=max_seconds) as decoder:
        return decoder.declared_duration


def decode_all(path: Path, *, max_seconds: float = 0.0) -> Audio:
    """The whole file as one array. For short inputs and tests; the pipeline streams with `blocks()`."""
    with AudioDecoder(path, max_seconds=max_seconds) as audio:
        parts = list(audio.blocks())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
