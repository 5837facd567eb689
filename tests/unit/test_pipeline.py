"""The whole pipeline with the real tiny.en: text quality, window-independence, silence, cancellation, memory."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.audio.buffer import AudioBuffer
from app.audio.decode import decode_all
from app.engines.protocol import Decoding
from app.errors import Cancelled, InvalidInput
from app.settings import AudioSettings
from app.transcription.pipeline import TranscriptionRun
from app.worker.cancel import CancelToken
from tests.audio_factory import write_wav
from tests.audio_helpers import TWO_CITIES, tiny_en
from tools.textmetrics import word_error_rate

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

    def transcribe(self, chunks, decoding):
        self.calls.append(len(chunks))
        return self.engine.transcribe(chunks, decoding)


def held_samples(monkeypatch) -> list[int]:
    """How many samples the pipeline's audio buffer held after each append (its memory, over the run)."""
    sizes: list[int] = []
    append = AudioBuffer.append

    def counting_append(self, block):
        append(self, block)
        sizes.append(self.size)

    monkeypatch.setattr(AudioBuffer, "append", counting_append)
    return sizes


def transcription(path, audio, engine=None, cancel=None, language=None, window_seconds=60.0):
    return TranscriptionRun(
        path,
        engine or tiny_en(),
        Decoding(language=language),
        audio=audio,
        cancel=cancel or CancelToken(),
        window_seconds=window_seconds,
    )


def chunks_of(path, audio, window_seconds):
    return [chunk for chunk, _ in transcription(path, audio, window_seconds=window_seconds).chunk_stream()]


def run(path, audio, engine=None, cancel=None, language=None, window_seconds=60.0):
    r = transcription(path, audio, engine, cancel, language, window_seconds)
    return r, list(r.segments())


@pytest.fixture(scope="module")
def default_run():
    return run(TWO_CITIES, AudioSettings())


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


def test_small_windows_and_small_chunks_lose_and_double_no_words(monkeypatch):
    """3 s decode windows give exactly the same chunks and words as one big window, and still the right text."""
    settings = AudioSettings(batch_size=3, **SMALL_LIMITS)
    small_chunks = chunks_of(TWO_CITIES, settings, 3.0)
    assert small_chunks == chunks_of(TWO_CITIES, settings, 600.0)
    assert len(small_chunks) >= 6  # the small limits really cut the reading into many chunks
    assert all(c.duration <= 8.0 for c in small_chunks)
    assert all(a.end <= b.start for a, b in itertools.pairwise(small_chunks))
    _, large_segments = run(TWO_CITIES, settings, window_seconds=600.0)
    held = held_samples(monkeypatch)
    _, small_segments = run(TWO_CITIES, settings, window_seconds=3.0)
    small_words = [(w.word, w.start, w.end) for s in small_segments for w in s.words]
    large_words = [(w.word, w.start, w.end) for s in large_segments for w in s.words]
    assert small_words == large_words
    assert word_error_rate(REFERENCE, " ".join(s.text for s in small_segments)) <= 0.10
    # memory: the buffer never held more than a window plus the strict limit
    assert max(held) <= (3.0 + 8.0) * 16000


def test_silence_gives_no_segments_and_never_runs_the_engine(tmp_path):
    path = write_wav(tmp_path / "silence.wav", np.zeros(16000 * 20, dtype=np.float32), rate=16000)
    engine = CountingEngine(tiny_en())
    r, segments = run(path, AudioSettings(), engine=engine, language="en", window_seconds=5.0)
    assert segments == []
    assert engine.calls == []
    assert r.duration == pytest.approx(20.0)
    assert r.language == "en"  # the requested language stays when nothing was heard


def test_cancellation_stops_before_the_next_batch():
    engine = CountingEngine(tiny_en())
    cancel = CancelToken()
    r = transcription(TWO_CITIES, AudioSettings(batch_size=1, **SMALL_LIMITS), engine, cancel)
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
        run(TWO_CITIES, AudioSettings(), engine=engine, cancel=cancel)
    assert engine.calls == []


def test_audio_over_the_limit_is_rejected_before_any_recognition():
    engine = CountingEngine(tiny_en())
    with pytest.raises(InvalidInput, match="MAX_AUDIO_SECONDS"):
        run(TWO_CITIES, AudioSettings(max_audio_seconds=20), engine=engine)
    assert engine.calls == []


def test_buffer_stays_bounded_on_long_audio(tmp_path, monkeypatch):
    """5 minutes of tiled speech plus a long silence: decode + VAD + chunker keep at most window + strict limit."""
    speech = decode_all(TWO_CITIES)
    audio = np.concatenate([np.tile(speech, 6), np.zeros(16000 * 40, dtype=np.float32), speech])
    path = write_wav(tmp_path / "long.wav", audio, rate=16000)
    audio_settings = AudioSettings()
    r = transcription(path, audio_settings, window_seconds=5.0)
    held = held_samples(monkeypatch)
    chunks = [chunk for chunk, _ in r.chunk_stream()]
    assert r.duration == pytest.approx(audio.size / 16000)
    assert max(held) <= (5.0 + audio_settings.vad_strict_limit) * 16000
    assert r.stream is not None and r.stream.buffer.size == 0
    assert len(chunks) >= 14
    assert all(c.duration <= audio_settings.vad_strict_limit for c in chunks)
    # the 40 s of silence is in no chunk
    silence = (speech.size * 6 + 16000, speech.size * 6 + 16000 * 39)
    assert not any(c.start < silence[1] and silence[0] < c.end for c in chunks)
