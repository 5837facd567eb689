"""A pure-torch stand-in for the one piece of torchaudio that PyPI `gigaam` 0.1.0 uses: `transforms.MelSpectrogram`.

No torchaudio wheel on PyPI matches the torch we use, and gigaam imports it at module import time. `install()` puts
this module into `sys.modules["torchaudio"]` (only if the real one is absent). The maths follow torchaudio's
defaults (HTK mel scale, no filter normalisation, periodic Hann window, power 2, reflect padding when centred).
"""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Callable

import torch
from torch import Tensor, nn


def _hz_to_mel(freq: float) -> float:
    return 2595.0 * math.log10(1.0 + freq / 700.0)


def _mel_to_hz(mels: Tensor) -> Tensor:
    return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)


def melscale_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> Tensor:
    """Triangular HTK mel filters, shape (n_freqs, n_mels), as torchaudio.functional.melscale_fbanks(norm=None)."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2)
    f_pts = _mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up_slopes = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.min(down_slopes, up_slopes), min=0.0)


class MelSpectrogram(nn.Module):
    """Power mel spectrogram of (..., time) audio -> (..., n_mels, frames)."""

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 400,
        win_length: int | None = None,
        hop_length: int | None = None,
        f_min: float = 0.0,
        f_max: float | None = None,
        n_mels: int = 128,
        window_fn: Callable[..., Tensor] = torch.hann_window,
        power: float = 2.0,
        center: bool = True,
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.win_length = win_length or n_fft
        self.hop_length = hop_length or self.win_length // 2
        self.power = power
        self.center = center
        self.pad_mode = pad_mode
        self.window: Tensor
        self.fb: Tensor
        self.register_buffer("window", window_fn(self.win_length))
        self.register_buffer(
            "fb", melscale_fbanks(n_fft // 2 + 1, f_min, f_max or sample_rate / 2, n_mels, sample_rate)
        )

    def forward(self, waveform: Tensor) -> Tensor:
        shape = waveform.shape
        flat = waveform.reshape(-1, shape[-1])
        spec = torch.stft(
            flat,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=self.center,
            pad_mode=self.pad_mode,
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        power = spec.abs().pow(self.power)
        mel = torch.matmul(power.transpose(-1, -2), self.fb).transpose(-1, -2)
        return mel.reshape(*shape[:-1], mel.shape[-2], mel.shape[-1])


def install() -> bool:
    """Make `import torchaudio` succeed with this stand-in, unless a real torchaudio is importable.

    Returns whether the stand-in was installed; `uninstall()` it once the importer is done, so that libraries
    probing for torchaudio later (transformers does) do not find a module without a spec.
    """
    if "torchaudio" in sys.modules:
        return False
    try:
        import torchaudio  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        pass
    else:
        return False
    module = types.ModuleType("torchaudio")
    transforms = types.ModuleType("torchaudio.transforms")
    transforms.MelSpectrogram = MelSpectrogram  # type: ignore[attr-defined]
    module.transforms = transforms  # type: ignore[attr-defined]
    sys.modules["torchaudio"] = module
    sys.modules["torchaudio.transforms"] = transforms
    return True


def uninstall() -> None:
    """Take the stand-in out of `sys.modules` (modules that imported it keep their reference)."""
    for name in ("torchaudio", "torchaudio.transforms"):
        if isinstance(sys.modules.get(name), types.ModuleType) and not getattr(sys.modules[name], "__file__", None):
            del sys.modules[name]
