"""The bundled ONNX speaker encoder equals Resemblyzer's torch network and runs without torch or resemblyzer."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from app.diarization.diarize import SAMPLE_RATE, WINDOW_FRAMES, _region_windows, audio_blocks, padded_regions
from app.diarization.speaker_encoder import EMBED_BATCH, SpeakerEncoder
from app.errors import ModelUnavailable
from tests.server import AUDIO
from tools.speaker_encoder_convert import load_reference

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = ["endgame_nagg_nell.wav", "two_cities.wav", "beckett.wav"]


def diarization_windows(path: Path) -> list[np.ndarray]:
    """The mel windows `diarize()` embeds for a recording (same regions, same 1.6 s / 0.8 s windows)."""
    found = list(padded_regions(audio_blocks(path)))
    mels: list[np.ndarray] = []
    for index, (start, end, audio) in enumerate(found):
        mels.extend(_region_windows(index, start / SAMPLE_RATE, end / SAMPLE_RATE, audio)[1])
    return mels


@pytest.mark.slow
def test_onnx_encoder_matches_torch_on_real_speech() -> None:
    """Per-window cosine >= 0.999 on every window of the three recordings (measured minimum: 0.9999998)."""
    reference = load_reference()
    encoder = SpeakerEncoder.load(num_threads=2)
    windows = {name: diarization_windows(AUDIO / name) for name in RECORDINGS}
    # Both kinds of window are covered: full ones in more than one batch, and shorter ones of short regions.
    assert max(sum(m.shape[0] == WINDOW_FRAMES for m in mels) for mels in windows.values()) > EMBED_BATCH
    assert any(m.shape[0] < WINDOW_FRAMES for mels in windows.values() for m in mels)
    for name, mels in windows.items():
        got = encoder.embed(mels)  # mixed lengths in one call
        with torch.inference_mode():  # the truth: each window alone, nothing padded
            want = np.stack([reference(torch.from_numpy(m[None]))[0].numpy() for m in mels])
        assert got.shape == want.shape == (len(mels), 256)
        assert got.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
        cosines = np.sum(got * want, axis=1) / np.linalg.norm(want, axis=1)
        assert cosines.min() >= 0.999, (name, float(cosines.min()))


def test_runs_without_torch_or_resemblyzer() -> None:
    """A process where `import torch` and `import resemblyzer` fail diarizes the dialogue into two speakers."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["resemblyzer"] = None
        from app.diarization.diarize import diarize
        from app.diarization.speaker_encoder import SpeakerEncoder
        segments = diarize({str(AUDIO / "endgame_nagg_nell.wav")!r}, SpeakerEncoder.load(num_threads=2))
        assert sys.modules["torch"] is None and sys.modules["resemblyzer"] is None
        print(len({{s.speaker for s in segments}}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


def test_embed_edges(tmp_path: Path) -> None:
    encoder = SpeakerEncoder.load(num_threads=1)
    assert encoder.embed([]).shape == (0, 256)
    one_frame = encoder.embed([np.ones((1, 40), np.float32)])
    assert one_frame.shape == (1, 256)
    assert np.linalg.norm(one_frame[0]) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="mel frames"):
        encoder.embed([np.ones((160, 80), np.float32)])
    encoder.close()
    with pytest.raises(RuntimeError, match="closed"):
        encoder.embed([np.ones((160, 40), np.float32)])
    with pytest.raises(ModelUnavailable):
        SpeakerEncoder.load(num_threads=1, path=tmp_path / "missing.onnx")
