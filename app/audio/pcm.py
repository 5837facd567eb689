"""Raw PCM of any common layout -> 16 kHz mono PCM16, streaming; and raw 16 kHz PCM16 files made readable as WAV.

    converter = PcmConverter(PcmFormat(rate=22050, width=2, channels=2))   # InvalidInput for a format we can't read
    pcm16 = converter.feed(data)                                           # 16 kHz mono s16le bytes, as it comes

Widths are bytes per sample: 1 (unsigned 8-bit), 2, 3 or 4 (signed little-endian). Channels are averaged, then
PyAV's resampler converts the rate. A partial frame at the end of a piece is carried to the next one.
"""

from __future__ import annotations

import struct
from pathlib import Path

import av
import msgspec
import numpy as np

from app.audio.types import SAMPLE_RATE
from app.errors import InputTooLarge, InvalidInput

MIN_RATE, MAX_RATE = 4000, 192000
MAX_CHANNELS = 8
WIDTHS = (1, 2, 3, 4)


class PcmFormat(msgspec.Struct, frozen=True):
    rate: int
    width: int  # bytes per sample
    channels: int

    def check(self) -> None:
        """InvalidInput (about "audio") unless this is a layout `PcmConverter` reads."""
        if not MIN_RATE <= self.rate <= MAX_RATE:
            raise InvalidInput(f"Unsupported audio rate {self.rate} Hz: use {MIN_RATE}-{MAX_RATE}", about="audio")
        if self.width not in WIDTHS:
            raise InvalidInput(f"Unsupported sample width {self.width}: use 1, 2, 3 or 4 bytes", about="audio")
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise InvalidInput(f"Unsupported channel count {self.channels}: use 1-{MAX_CHANNELS}", about="audio")

    @property
    def frame_bytes(self) -> int:
        return self.width * self.channels


class PcmConverter:
    """Interleaved PCM in `source` format -> 16 kHz mono PCM16 little-endian bytes."""

    def __init__(self, source: PcmFormat) -> None:
        source.check()
        self.source = source
        self._carry = b""
        self._pts = 0
        self._resampler = (
            av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE) if source.rate != SAMPLE_RATE else None
        )

    def feed(self, data: bytes) -> bytes:
        frame_bytes = self.source.frame_bytes
        data = self._carry + data
        whole = len(data) - len(data) % frame_bytes
        self._carry = data[whole:]
        if whole == 0:
            return b""
        mono = _mono_float(data[:whole], self.source.width, self.source.channels)
        if self._resampler is None:
            return _to_pcm16(mono)
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.source.rate
        frame.pts = self._pts
        self._pts += mono.size
        return b"".join(out.to_ndarray().tobytes() for out in self._resampler.resample(frame))


def _mono_float(data: bytes, width: int, channels: int) -> np.ndarray:
    """Interleaved samples -> float32 mono in [-1, 1]."""
    if width == 1:
        samples = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        samples = np.where(value >= 1 << 23, value - (1 << 24), value).astype(np.float32) / float(1 << 23)
    else:
        samples = np.frombuffer(data, dtype="<i4").astype(np.float32) / float(1 << 31)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32)


def _to_pcm16(audio: np.ndarray) -> bytes:
    return bytes((np.clip(audio, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes())


def wav_header(data_bytes: int, *, rate: int = SAMPLE_RATE, channels: int = 1, width: int = 2) -> bytes:
    """The 44-byte header of a PCM WAV file holding `data_bytes` of samples."""
    block = channels * width
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, width * 8)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


MAX_WAV_DATA_BYTES = 0xFFFFFFFF - 36  # what a RIFF header can count (about 37 hours at 16 kHz)


def pcm16_file_as_wav(raw: Path) -> Path:
    """A file of raw 16 kHz mono s16le samples rewritten as a WAV file beside it (copied in 1 MB blocks: memory
    stays flat whatever the length); the raw file is removed. A trailing odd byte is dropped."""
    size = raw.stat().st_size
    if size == 0:
        raise InvalidInput("Audio file is empty", about="audio", code="empty_audio")
    if size > MAX_WAV_DATA_BYTES:
        raise InputTooLarge("Raw PCM longer than a WAV file can hold (4 GB)", about="audio", code="file_too_large")
    data_bytes = size - size % 2
    wav = raw.with_name(raw.name + ".wav")
    with raw.open("rb") as source, wav.open("wb") as target:
        target.write(wav_header(data_bytes))
        left = data_bytes
        while left > 0 and (block := source.read(min(left, 1 << 20))):
            target.write(block)
            left -= len(block)
    raw.unlink()
    return wav
