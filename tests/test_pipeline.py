"""The whole pipeline with the real tiny.en: text quality, window-independence, silence, cancellation, memory."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.audio.decode import decode_all
from app.errors import Cancelled, InvalidInput
from app.textmetrics import word_error_rate
from app.transcription.pipeline import PipelineConfig, TranscriptionRun
from app.worker.cancel import CancelToken
from tests.audio_factory import write_wav
from tests.audio_helpers import TWO_CITIES, tiny_en

REFERENCE = TWO_CITIES.with_suffix(".txt").read_text()
SMALL_LIMITS = {"vad_min_duration": 4.0, "vad_max_duration": 6.0, "vad_strict_limit": 8.0}


class CountingEngine:
    """The real engine, counting calls (to prove what was, or was not, sent to it)."""

    def __init__(self, engine):
        self.engine = engine
        self.calls: list[int] = []

    @property
    def info(self):
        return self.engine.info

    def transcribe(self, chunks, **kwargs):
        self.calls.append(len(chunks))
        return self.engine.transcribe(chunks, **kwargs)


def run(path, config, engine=None, cancel=None, language=None):
    r = TranscriptionRun(
        path,
        engine or tiny_en(),
        language=language,
        task="transcribe",
        prompt=None,
        config=config,
        cancel=cancel or CancelToken(),
    )
    return r, list(r.segments())


@pytest.fixture(scope="module")
def default_run():
    return run(TWO_CITIES, PipelineConfig())


def test_two_cities_default_settings(default_run):
    r, segments = default_run
    text = " ".join(s.text for s in segments)
    assert word_error_rate(REFERENCE, text) <= 0.10
    assert r.language == "en"
    assert r.duration == pytest.approx(44.374, abs=0.01)
    assert all(a.start <= b.start for a, b in itertools.pairwise(segments))
    words = [w for s in segments for w in s.words]
    assert len(words) >= 100
    assert all(w.word == w.word.strip() and w.word for w in words)
    assert all(0 <= w.start <= w.end <= r.duration for w in words)
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert all(s.tokens and s.avg_logprob is not None and s.no_speech_prob is not None for s in segments)


def test_small_windows_and_small_chunks_lose_and_double_no_words():
    """3 s decode windows give exactly the same chunks and words as one big window, and still the right text."""
    small, small_segments = run(TWO_CITIES, PipelineConfig(window_seconds=3.0, batch_size=3, **SMALL_LIMITS))
    large, large_segments = run(TWO_CITIES, PipelineConfig(window_seconds=600.0, batch_size=3, **SMALL_LIMITS))
    assert small.chunks == large.chunks
    assert len(small.chunks) >= 6  # the small limits really cut the reading into many chunks
    assert all(c.duration <= 8.0 for c in small.chunks)
    assert all(a.end <= b.start for a, b in zip(small.chunks, small.chunks[1:]))
    small_words = [(w.word, w.start, w.end) for s in small_segments for w in s.words]
    large_words = [(w.word, w.start, w.end) for s in large_segments for w in s.words]
    assert small_words == large_words
    assert word_error_rate(REFERENCE, " ".join(s.text for s in small_segments)) <= 0.10
    # memory: the buffer never held more than a window plus the strict limit
    assert small.buffer.high_water <= (3.0 + 8.0) * 16000


def test_silence_gives_no_segments_and_never_runs_the_engine(tmp_path):
    path = write_wav(tmp_path / "silence.wav", np.zeros(16000 * 20, dtype=np.float32), rate=16000)
    engine = CountingEngine(tiny_en())
    r, segments = run(path, PipelineConfig(window_seconds=5.0), engine=engine, language="en")
    assert segments == []
    assert engine.calls == []
    assert r.duration == pytest.approx(20.0)
    assert r.language == "en"  # the requested language stays when nothing was heard


def test_cancellation_stops_before_the_next_batch():
    engine = CountingEngine(tiny_en())
    cancel = CancelToken()
    r = TranscriptionRun(
        TWO_CITIES,
        engine,
        language=None,
        task="transcribe",
        prompt=None,
        config=PipelineConfig(batch_size=1, **SMALL_LIMITS),
        cancel=cancel,
    )
    segments = r.segments()
    first = next(segments)
    assert first.text
    cancel.cancel()
    with pytest.raises(Cancelled):
        list(segments)
    assert engine.calls == [1]


def test_cancelled_before_start_runs_nothing():
    engine = CountingEngine(tiny_en())
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        run(TWO_CITIES, PipelineConfig(), engine=engine, cancel=cancel)
    assert engine.calls == []


def test_audio_over_the_limit_is_rejected_before_any_recognition():
    engine = CountingEngine(tiny_en())
    with pytest.raises(InvalidInput, match="MAX_AUDIO_SECONDS"):
        run(TWO_CITIES, PipelineConfig(max_audio_seconds=20), engine=engine)
    assert engine.calls == []


def test_buffer_stays_bounded_on_long_audio(tmp_path):
    """5 minutes of tiled speech plus a long silence: decode + VAD + chunker keep at most window + strict limit."""
    speech = decode_all(TWO_CITIES)
    audio = np.concatenate([np.tile(speech, 6), np.zeros(16000 * 40, dtype=np.float32), speech])
    path = write_wav(tmp_path / "long.wav", audio, rate=16000)
    config = PipelineConfig(window_seconds=5.0)
    r = TranscriptionRun(
        path, tiny_en(), language=None, task="transcribe", prompt=None, config=config, cancel=CancelToken()
    )
    chunks = [chunk for chunk, _ in r.chunk_stream()]
    assert r.duration == pytest.approx(audio.size / 16000)
    assert r.buffer.high_water <= (config.window_seconds + config.vad_strict_limit) * 16000
    assert r.buffer.size == 0
    assert len(chunks) >= 14
    assert all(c.duration <= config.vad_strict_limit for c in chunks)
    # the 40 s of silence is in no chunk
    silence = (speech.size * 6 + 16000, speech.size * 6 + 16000 * 39)
    assert not any(c.start < silence[1] and silence[0] < c.end for c in chunks)
