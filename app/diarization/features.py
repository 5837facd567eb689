"""The speaker encoder's input features, in numpy: Resemblyzer's mel frames and volume normalisation.

Resemblyzer computes them with librosa (whose numba warm-up costs ~8 s); these are the same numbers
(`tests/unit/test_diarize.py` checks them against librosa's).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from app.audio.types import SAMPLE_RATE
from app.audio.types import Audio as FloatArray


def _hz_to_mel(freq: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale (librosa's default, htk=False)."""
    f_sp = 200.0 / 3
    mels = freq / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_part = freq >= min_log_hz
    mels[log_part] = min_log_mel + np.log(freq[log_part] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_part = mels >= min_log_mel
    freqs[log_part] = min_log_hz * np.exp(logstep * (mels[log_part] - min_log_mel))
    return freqs


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = 400, n_mels: int = 40) -> FloatArray:
    """Slaney-normalised triangular mel filters, equal to `librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`."""
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = _hz_to_mel(np.array([0.0, sr / 2.0]))
    mel_f = _mel_to_hz(np.linspace(edges[0], edges[1], n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


_FILTERS = mel_filterbank()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)).astype(np.float32)  # periodic Hann


def mel_frames(wav: FloatArray) -> FloatArray:
    """Power mel spectrogram as Resemblyzer computes it (25 ms window, 10 ms hop, centred): (frames, 40)."""
    padded = np.pad(wav.astype(np.float32), 200, mode="constant")
    count = 1 + (len(padded) - 400) // 160
    frames = np.lib.stride_tricks.sliding_window_view(padded, 400)[::160][:count]
    spectrum = np.fft.rfft(frames * _WINDOW, axis=1)  # complex64 from float32 input (numpy >= 2)
    power = np.square(spectrum.real) + np.square(spectrum.imag)  # |X|^2 without a square root and back
    # einsum, not `@`: this small product in BLAS wakes OpenBLAS's thread pool once per region, which cost ~50x
    # more (1.3 s vs 0.02 s per 1000 s of speech) on a busy 2-core machine; einsum's single loop costs ~0.14 s.
    return np.asarray(np.einsum("fb,mb->fm", power, _FILTERS), dtype=np.float32)


def normalize_volume(wav: FloatArray, target_dbfs: float = -30.0) -> FloatArray:
    """Raise quiet audio to `target_dbfs` RMS (never lowers it), as Resemblyzer's preprocessing does."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if len(wav) else 0.0
    if rms <= 1e-9:
        return wav
    change_db = target_dbfs - 20 * float(np.log10(rms))
    if change_db <= 0:
        return wav
    gain = np.float32(10 ** (change_db / 20))
    return np.asarray(wav * gain, dtype=np.float32)


# Mel bands 32-39 lie above 4.2 kHz (centres 4360-7415 Hz): telephone audio (8 kHz sampling) has next to no power
# there (measured: <= 1.2e-5 of the total for every 8 kHz copy and recording of the real-voice set, >= 3.9e-4 for
# wide-band speech).
HIGH_BANDS = slice(32, None)
NARROW_BAND_RATIO = 1e-4


def is_narrow_band(band_power: npt.NDArray[np.float64]) -> bool:
    """Whether speech whose power per mel band (summed over frames) is `band_power` is telephone-band."""
    total = float(band_power.sum())
    return total > 0 and float(band_power[HIGH_BANDS].sum()) < NARROW_BAND_RATIO * total
