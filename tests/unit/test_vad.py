"""Silero VAD on onnxruntime: streaming equivalence, speech vs silence, no torch; thread configuration."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from app.audio.decode import decode_all
from app.audio.vad import WINDOW, load_vad, speech_regions
from app.worker.threads import configure_threads, ort_session_options
from tests.audio_helpers import TWO_CITIES


@pytest.fixture(scope="module")
def two_cities() -> np.ndarray:
    return decode_all(TWO_CITIES)


@pytest.mark.parametrize("block", [1, 511, 512, 777, 16000, 10**7])
def test_streaming_probabilities_do_not_depend_on_block_size(two_cities, block):
    audio = two_cities[: 16000 * 12]
    whole = load_vad().probabilities(audio)
    stream = load_vad().stream()
    parts = [stream.feed(audio[i : i + block]) for i in range(0, audio.size, block)]
    streamed = np.concatenate([*parts, stream.finish()])
    assert whole.shape == (-(-audio.size // WINDOW),)
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


def test_speech_is_found_in_two_cities(two_cities):
    regions = speech_regions(load_vad().probabilities(two_cities), two_cities.size)
    speech = sum(r.duration for r in regions)
    assert len(regions) >= 8  # the reading has many pauses between phrases
    assert 30.0 < speech < 44.0
    assert regions[0].start / 16000 < 2.0 and regions[-1].end / 16000 > 40.0


@pytest.mark.parametrize("kind", ["zeros", "hiss"])
def test_no_speech_in_silence(kind):
    rng = np.random.default_rng(0)
    audio = np.zeros(16000 * 20, dtype=np.float32)
    if kind == "hiss":
        audio = (rng.standard_normal(audio.size) * 0.001).astype(np.float32)
    assert speech_regions(load_vad().probabilities(audio), audio.size) == []


def test_vad_and_pipeline_never_import_torch_or_silero_vad():
    code = (
        "import sys, numpy as np\n"
        "from app.audio.vad import load_vad\n"
        "import app.transcription.pipeline, app.engines.whisper\n"
        "load_vad().probabilities(np.zeros(16000, dtype=np.float32))\n"
        "print('torch' in sys.modules, 'silero_vad' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=os.getcwd())
    assert out.stdout.split() == ["False", "False"]


def test_configure_threads_sets_every_library(monkeypatch):
    monkeypatch.setattr("app.worker.threads._configured", None)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    configure_threads(3)
    assert os.environ["OMP_NUM_THREADS"] == "3" and os.environ["MKL_NUM_THREADS"] == "3"
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"
    assert ort_session_options().intra_op_num_threads == 3
    assert ort_session_options(1).intra_op_num_threads == 1
    with pytest.raises(ValueError):
        configure_threads(0)


def test_configure_threads_caps_torch_when_it_is_loaded():
    code = (
        "import torch\n"
        "torch.set_num_threads(1)\n"
        "from app.worker.threads import configure_threads\n"
        "configure_threads(2)\n"
        "print(torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=os.getcwd())
    assert out.stdout.strip() == "2"
