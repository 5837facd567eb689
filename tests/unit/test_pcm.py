"""Raw PCM of any layout -> 16 kHz mono PCM16 (`app/audio/pcm.py`), as the Wyoming server converts what clients
declare, and raw 16 kHz PCM files rewritten as WAV (whisper-asr-webservice's `encode=false`)."""

from __future__ import annotations

import itertools
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.audio.pcm import PcmConverter, PcmFormat, pcm16_file_as_wav
from app.errors import InvalidInput

RNG = np.random.default_rng(21)
SIGNAL = (np.sin(2 * np.pi * 440 * np.arange(8000) / 16000) * 20000).astype(np.int16)


def as_width(samples: np.ndarray, width: int) -> bytes:
    """int16 samples written at `width` bytes (8-bit unsigned, else signed little-endian, scaled up)."""
    if width == 1:
        return ((samples.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    if width == 3:
        wide = samples.astype(np.int32) << 8
        return b"".join(int(v).to_bytes(3, "little", signed=True) for v in wide)
    if width == 4:
        return (samples.astype("<i4") << 16).tobytes()
    return samples.astype("<i2").tobytes()


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_every_width_reads_as_the_same_samples(width: int) -> None:
    out = np.frombuffer(PcmConverter(PcmFormat(16000, width, 1)).feed(as_width(SIGNAL, width)), dtype="<i2")
    tolerance = 256 if width == 1 else 0  # 8-bit keeps the top 8 bits only
    assert out.size == SIGNAL.size and np.abs(out.astype(int) - SIGNAL).max() <= tolerance


def test_channels_are_averaged_and_rates_converted() -> None:
    left, right = SIGNAL, np.zeros_like(SIGNAL)
    stereo = np.stack([left, right], axis=1).reshape(-1).astype("<i2").tobytes()
    mono = np.frombuffer(PcmConverter(PcmFormat(16000, 2, 2)).feed(stereo), dtype="<i2")
    assert np.abs(mono.astype(int) - SIGNAL // 2).max() <= 1
    t = np.arange(44100) / 44100  # 1 s of 440 Hz at 44.1 kHz
    tone = (np.sin(2 * np.pi * 440 * t) * 20000).astype("<i2").tobytes()
    out = np.frombuffer(PcmConverter(PcmFormat(44100, 2, 1)).feed(tone), dtype="<i2")
    assert abs(out.size - 16000) <= 64  # the resampler holds back a few samples until more come
    spectrum = np.abs(np.fft.rfft(out.astype(np.float32)))
    assert abs(np.argmax(spectrum) * 16000 / out.size - 440) < 5


@settings(max_examples=40, deadline=None)
@given(
    fmt=st.sampled_from(
        [PcmFormat(16000, 2, 1), PcmFormat(22050, 2, 2), PcmFormat(48000, 3, 1), PcmFormat(8000, 1, 2)]
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=6000), max_size=12),
)
def test_how_the_bytes_are_cut_into_pieces_changes_nothing(fmt: PcmFormat, cuts: list[int]) -> None:
    data = RNG.integers(0, 256, size=6000, dtype=np.uint8).tobytes()
    whole = PcmConverter(fmt).feed(data)
    converter = PcmConverter(fmt)
    bounds = [0, *sorted(cuts), len(data)]
    pieces = b"".join(converter.feed(data[a:b]) for a, b in itertools.pairwise(bounds))
    assert pieces == whole  # partial frames are carried; the resampler streams


@pytest.mark.parametrize(
    "fmt", [PcmFormat(0, 2, 1), PcmFormat(16000, 5, 1), PcmFormat(16000, 2, 0), PcmFormat(16000, 2, 9)]
)
def test_formats_we_cannot_read_are_refused(fmt: PcmFormat) -> None:
    with pytest.raises(InvalidInput):
        PcmConverter(fmt)


def test_a_raw_file_becomes_a_wav_of_the_same_samples(tmp_path: Path) -> None:
    raw = tmp_path / "upload"
    raw.write_bytes(SIGNAL.astype("<i2").tobytes() + b"\x07")  # a stray odd byte
    wav = pcm16_file_as_wav(raw)
    assert not raw.exists()
    with wave.open(str(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert np.array_equal(np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), SIGNAL)
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(InvalidInput):
        pcm16_file_as_wav(tmp_path / "empty")
