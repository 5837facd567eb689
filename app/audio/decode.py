"""Decode any file FFmpeg understands into 16 kHz mono float32 blocks, incrementally, with bounded memory.

PyAV bundles FFmpeg's libraries, so no system ffmpeg is needed. The file is read packet by packet; each decoded
frame becomes float samples here (any integer or float sample format, any number of channels), is checked (NaN or
infinity is refused, out-of-range floats are clipped as a player clips them), mixed down to mono (the mean of the
channels, LFE left out, whatever the layout: FFmpeg's own resampler refuses channel counts without a standard
layout), then resampled to 16 kHz. At most one block (plus the resampler's small backlog) is in memory at a time.
What cannot be real audio is refused with `InvalidInput` naming the problem: no channels, a rate below
`MIN_SAMPLE_RATE` (a duration bomb: 30 kB declared at 2 Hz is hours of audio) or above `MAX_SAMPLE_RATE`.

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
# Nothing real is recorded below narrow-band telephone rates (8 kHz; 4 kHz leaves a margin for odd old files).
MIN_SAMPLE_RATE = 4_000
# The highest rate audio hardware records at (DXD-class converters); FFmpeg's resampler fails to build beyond.
MAX_SAMPLE_RATE = 768_000
# The probe decodes this much of the opening, so a file whose samples are unusable is refused before it is queued.
PROBE_SECONDS = 10.0
# Decoded frames are converted in batches of this many seconds (see `_Converter`).
_BATCH_SECONDS = 0.5
# FFmpeg's sample formats (planar or packed) as numpy types, and the full scale of the integer ones.
_DTYPES: dict[str, type[np.generic]] = {
    "u8": np.uint8,
    "s16": np.int16,
    "s32": np.int32,
    "s64": np.int64,
    "flt": np.float32,
    "dbl": np.float64,
}
_FULL_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def _too_long(seconds: float, limit: float) -> InvalidInput:
    return InvalidInput(
        f"Audio is {seconds:.0f} s long; the limit is {limit:.0f} s (MAX_AUDIO_SECONDS)",
        about="audio",
        code="audio_too_long",
    )


def _longer_than(limit: float) -> InvalidInput:
    """The audio runs past the limit, and its full length is not known (no header said, or the header was wrong)."""
    return InvalidInput(
        f"Audio is longer than the limit of {limit:.0f} s (MAX_AUDIO_SECONDS)", about="audio", code="audio_too_long"
    )


def _check_rate(rate: int) -> None:
    if rate < MIN_SAMPLE_RATE:
        raise InvalidInput(
            f"Unsupported audio: a sample rate of {rate} Hz is below {MIN_SAMPLE_RATE} Hz (no speech is recorded so "
            "slowly; the header is likely wrong)",
            about="audio",
            code="unsupported_sample_rate",
        )
    if rate > MAX_SAMPLE_RATE:
        raise InvalidInput(
            f"Unsupported audio: a sample rate of {rate} Hz is above {MAX_SAMPLE_RATE} Hz",
            about="audio",
            code="unsupported_sample_rate",
        )


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, about="audio", code="invalid_audio")


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
            raise _invalid("Could not decode audio file: it is not a media format FFmpeg can read") from None
        self._container: av.container.InputContainer = container
        try:
            if not container.streams.audio:
                raise InvalidInput("File contains no audio stream", about="audio", code="no_audio_stream")
            self._stream = container.streams.audio[0]
            if self._stream.codec_context is None:
                raise _invalid("Could not decode audio file: its audio codec is not one FFmpeg can decode")
            if self._stream.channels < 1:
                raise _invalid(
                    "Unsupported audio: the stream has no usable channel count (0, or more than FFmpeg takes)"
                )
            _check_rate(self._stream.rate)
            self.declared_duration = self._declared_duration()
            if (
                max_seconds > 0
                and self.declared_duration is not None
                and self.declared_duration > max_seconds + _DECLARED_SLACK_SECONDS
            ):
                raise _too_long(self.declared_duration, max_seconds)
        except BaseException:
            container.close()
            raise

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
        converter: _Converter | None = None
        try:
            for packet in self._container.demux(self._stream):
                try:
                    frames = packet.decode()
                except av.InvalidDataError:
                    # A corrupt packet: FFmpeg's own tools skip it and go on; so do we.
                    self.skipped_packets += 1
                    continue
                for frame in frames:
                    if converter is None or not converter.takes(frame):
                        # The stream changed format mid-way (rare; e.g. concatenated MP3s): drain and restart.
                        origin = 0.0
                        if converter is not None:
                            yield converter.flush()
                            origin = converter.end_seconds
                        converter = _Converter(frame, origin)
                    yield converter.push(frame)
        except av.FFmpegError as exc:
            # A broken or truncated tail: keep what decoded; the caller decides whether that is nothing.
            log.warning("audio decoding stopped early (%s) after %.1f s", type(exc).__name__, self.decoded_seconds)
            self.skipped_packets += 1
        if converter is not None:
            yield converter.flush()

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
                raise _longer_than(self.max_seconds)
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
                raise _invalid("Could not decode audio file: its audio stream is corrupt")
            raise InvalidInput("Audio file is empty", about="audio", code="empty_audio")

    def measured_duration(self, stop_after: float) -> float | None:
        """The length by the packets' timestamps (demuxing only, no decoding), counted until it passes
        `stop_after`; None when no packet carries one. Consumes the file: call it on a decoder of its own."""
        stream = self._stream
        if stream.time_base is None:
            return None
        end: int | None = None
        try:
            for packet in self._container.demux(stream):
                if packet.pts is None:
                    continue
                packet_end = packet.pts + (packet.duration or 0)
                end = packet_end if end is None else max(end, packet_end)
                if float(end * stream.time_base) > stop_after:
                    break
        except av.FFmpegError:
            pass  # a broken tail: the length up to it
        return None if end is None else float(end * stream.time_base)


def _downmix_weights(layout: av.AudioLayout) -> Audio:
    """Mono = the mean of the channels, the LFE channel (when the layout names one) left out, as FFmpeg's own
    downmix does. Equal weights whatever the layout: most layouts past 8 channels have no standard order."""
    weights = np.array([0.0 if channel.name == "LFE" else 1.0 for channel in layout.channels], dtype=np.float32)
    if not weights.any():
        weights[:] = 1.0
    normalized: Audio = weights / weights.sum()
    return normalized


class _Converter:
    """Decoded frames of one shape (sample format, channel layout, rate) -> 16 kHz mono float32.

    Frames are gathered into batches of about `_BATCH_SECONDS`: each numpy and resampler call costs about as much
    for one MP3 frame (1 152 samples) as for twenty. `end_seconds`: where this shape's audio ends in the source."""

    def __init__(self, frame: av.AudioFrame, origin_seconds: float) -> None:
        fmt = frame.format
        self.kind = fmt.name.removesuffix("p")
        if self.kind not in _DTYPES:
            raise _invalid(f"Could not decode audio file: FFmpeg gave samples in a format it cannot use ({fmt.name})")
        _check_rate(frame.sample_rate)
        self.shape = (fmt.name, frame.layout.name, frame.sample_rate)
        self.rate = frame.sample_rate
        self.planar = fmt.is_planar
        self.channels = frame.layout.nb_channels
        self.weights = _downmix_weights(frame.layout) if self.channels > 1 else None
        self.origin_seconds = origin_seconds
        self.converted = 0  # samples converted so far, at `rate`
        self._batch: list[np.ndarray] = []
        self._batched = 0
        self._batch_samples = max(1, round(_BATCH_SECONDS * self.rate))
        self._resampler = (
            av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE) if self.rate != SAMPLE_RATE else None
        )

    @property
    def end_seconds(self) -> float:
        return self.origin_seconds + self.converted / self.rate

    def takes(self, frame: av.AudioFrame) -> bool:
        return (frame.format.name, frame.layout.name, frame.sample_rate) == self.shape

    def push(self, frame: av.AudioFrame) -> Audio:
        """The 16 kHz audio that is ready (often none until a batch is full)."""
        count, dtype = frame.samples, _DTYPES[self.kind]
        if self.planar:  # one plane per channel
            data = np.stack(
                [np.frombuffer(memoryview(plane), dtype, count) for plane in frame.planes[: self.channels]], axis=1
            )
        else:  # one plane of interleaved samples
            data = np.frombuffer(memoryview(frame.planes[0]), dtype, count * self.channels).reshape(
                count, self.channels
            )
        self._batch.append(data)
        self._batched += count
        return self._convert() if self._batched >= self._batch_samples else _EMPTY

    def flush(self) -> Audio:
        """Whatever is left, the resampler drained."""
        rest = self._convert()
        if self._resampler is None:
            return rest
        return np.concatenate([rest, _joined(self._resampler.resample(None))])

    def _convert(self) -> Audio:
        if not self._batch:
            return _EMPTY
        data = np.concatenate(self._batch) if len(self._batch) > 1 else self._batch[0]
        self._batch, self._batched = [], 0
        if self.kind in _FULL_SCALE:
            samples = data.astype(np.float32)
            if self.kind == "u8":
                samples -= 128.0
            samples *= np.float32(1.0 / _FULL_SCALE[self.kind])
        else:  # flt, dbl
            finite = np.isfinite(data)
            if not finite.all():
                at = self.end_seconds + int(np.argmin(finite.all(axis=1))) / self.rate
                raise InvalidInput(
                    f"The audio has samples that are not numbers (NaN or infinity), the first at {at:.2f} s: the "
                    "file is damaged or was written by a faulty program",
                    about="audio",
                    code="non_finite_samples",
                )
            samples = np.clip(data, -1.0, 1.0).astype(np.float32, copy=False)
        mono = samples[:, 0] if self.weights is None else samples @ self.weights
        start = self.converted
        self.converted += mono.size
        if self._resampler is None:
            return np.ascontiguousarray(mono)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(mono)[None, :], format="flt", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = start
        return _joined(self._resampler.resample(frame))


_EMPTY: Audio = np.zeros(0, dtype=np.float32)


def _joined(frames: list[av.AudioFrame]) -> Audio:
    parts = [frame.to_ndarray().reshape(-1) for frame in frames]
    if not parts:
        return _EMPTY
    return np.ascontiguousarray(np.concatenate(parts) if len(parts) > 1 else parts[0], dtype=np.float32)


def probe_audio(path: Path, max_seconds: float = 0.0) -> float | None:
    """Check that `path` is usable audio before it is queued; return the declared duration (None if unknown).

    Opens it (a container with an audio stream of a supported rate and channel count, not declared longer than
    `max_seconds`), decodes its first PROBE_SECONDS (so unusable samples or a corrupt stream get their 400 now) and,
    when no header declares the length, measures it from the packets' timestamps (a file of hours of silence that
    says nothing of its length is refused here, not after the worker has decoded MAX_AUDIO_SECONDS of it)."""
    with AudioDecoder(path, max_seconds=max_seconds) as decoder:
        next(iter(decoder.blocks(block_seconds=PROBE_SECONDS)), None)
        declared = decoder.declared_duration
    if declared is None and max_seconds > 0:
        with AudioDecoder(path) as scan:
            measured = scan.measured_duration(stop_after=max_seconds + _DECLARED_SLACK_SECONDS)
        if measured is not None and measured > max_seconds + _DECLARED_SLACK_SECONDS:
            raise _longer_than(max_seconds)
    return declared


def decode_all(path: Path, *, max_seconds: float = 0.0) -> Audio:
    """The whole file as one array. For short inputs and tests; the pipeline streams with `blocks()`."""
    with AudioDecoder(path, max_seconds=max_seconds) as audio:
        parts = list(audio.blocks())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
