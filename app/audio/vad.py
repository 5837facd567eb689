"""Silero VAD on onnxruntime, streaming, without torch.

Two parts, both incremental:

- `VadStream` turns 16 kHz float32 blocks of any size into one speech probability per 512-sample window, carrying
  the LSTM state and the 64-sample context across blocks, so the result does not depend on how the audio was cut.
- `SpeechSegmenter` turns those probabilities into raw (unpadded) speech regions with Silero's usual hysteresis:
  speech starts at a window >= `threshold`, ends after `min_silence` below `neg_threshold` (threshold - 0.15),
  regions shorter than `min_speech` are dropped (unless the end of the audio cut them short: see `finish`), and a
  region reaching `max_speech` is split at its lowest-probability window (a natural pause if there is one).
  Padding is added later by the chunker, which knows the neighbouring regions.

The model file is the Silero v6 ONNX that faster-whisper ships in its assets (inputs: 576 samples = 64 context +
512 window per row, h and c states). We never `import silero_vad`: its import resets torch's thread count.
"""

from __future__ import annotations

import functools
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from app.audio.types import SAMPLE_RATE, Audio
from app.worker.threads import ort_session_options

WINDOW = 512
CONTEXT = 64
VAD_MIN_SPEECH = 0.25  # seconds: shorter speech is ignored (the file pipeline and live dictation)
VAD_MIN_SILENCE = 0.1  # seconds: the file pipeline's default pause that ends a speech region
# Speech the end of the audio cuts off is kept from this length (shorter holds no word; OpenAI's realtime API
# refuses to commit less than 100 ms too), although complete regions must be longer than `min_speech`.
CUT_SPEECH_SECONDS = 0.1
CUT_SPEECH = round(CUT_SPEECH_SECONDS * SAMPLE_RATE)
Probabilities = npt.NDArray[np.float32]


def default_model_path() -> Path:
    """Silero VAD v6 as shipped inside the faster-whisper wheel (works offline, no torch)."""
    import faster_whisper.utils

    return Path(faster_whisper.utils.get_assets_path()) / "silero_vad_v6.onnx"


class SileroVad:
    """The loaded ONNX model; cheap to share. Make one `VadStream` per audio stream."""

    def __init__(self, path: Path | None = None, *, num_threads: int = 1) -> None:
        self.path = path or default_model_path()
        self.session = ort.InferenceSession(
            str(self.path), sess_options=ort_session_options(num_threads), providers=["CPUExecutionProvider"]
        )

    def stream(self) -> VadStream:
        return VadStream(self)

    def probabilities(self, audio: Audio) -> Probabilities:
        """All window probabilities of a whole array (the last partial window is zero-padded)."""
        stream = self.stream()
        return np.concatenate([stream.feed(audio), stream.finish()])


@functools.lru_cache(maxsize=4)
def load_vad(num_threads: int = 1) -> SileroVad:
    """A process-wide Silero instance (loading takes ~50 ms; sessions are safe to share for `run`)."""
    return SileroVad(num_threads=num_threads)


class VadStream:
    """Incremental speech probabilities: `feed` blocks, then `finish` once."""

    def __init__(self, model: SileroVad) -> None:
        self._session = model.session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._remainder = np.zeros(0, dtype=np.float32)
        self.windows = 0  # windows scored so far
        self._finished = False

    def feed(self, block: Audio) -> Probabilities:
        """Probabilities of every complete window now available (possibly none)."""
        if self._finished:
            raise RuntimeError("VadStream.feed after finish")
        audio = np.concatenate([self._remainder, block]) if self._remainder.size else block
        count = audio.size // WINDOW
        self._remainder = audio[count * WINDOW :].astype(np.float32, copy=True)
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        return self._score(audio[: count * WINDOW])

    def finish(self) -> Probabilities:
        """Score the last partial window (zero-padded), if any."""
        self._finished = True
        if self._remainder.size == 0:
            return np.zeros(0, dtype=np.float32)
        last = np.zeros(WINDOW, dtype=np.float32)
        last[: self._remainder.size] = self._remainder
        self._remainder = np.zeros(0, dtype=np.float32)
        return self._score(last)

    def _score(self, audio: Audio) -> Probabilities:
        windows = audio.reshape(-1, WINDOW).astype(np.float32, copy=False)
        contexts = np.empty((windows.shape[0], CONTEXT), dtype=np.float32)
        contexts[0] = self._context
        contexts[1:] = windows[:-1, -CONTEXT:]
        self._context = windows[-1, -CONTEXT:].copy()
        rows = np.concatenate([contexts, windows], axis=1)
        out, self._h, self._c = self._session.run(None, {"input": rows, "h": self._h, "c": self._c})
        self.windows += windows.shape[0]
        return np.asarray(out, dtype=np.float32).reshape(-1)


class SpeechRegion(msgspec.Struct, frozen=True):
    """Raw speech, in samples at 16 kHz: [start, end)."""

    start: int
    end: int

    @property
    def duration(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


class SpeechSegmenter:
    """Silero's hysteresis over a stream of window probabilities, emitting regions as soon as they are final."""

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        neg_threshold: float | None = None,
        min_speech_seconds: float = 0.25,
        min_silence_seconds: float = 0.1,
        max_speech_seconds: float = float("inf"),
        split_search_from_seconds: float = 0.0,
    ) -> None:
        self.threshold = threshold
        self.neg_threshold = neg_threshold if neg_threshold is not None else max(threshold - 0.15, 0.01)
        self.min_speech = round(min_speech_seconds * SAMPLE_RATE)
        self.min_silence = round(min_silence_seconds * SAMPLE_RATE)
        self.max_speech = int(max_speech_seconds * SAMPLE_RATE) if max_speech_seconds != float("inf") else 1 << 62
        if self.max_speech < 2 * WINDOW:
            raise ValueError("max_speech_seconds is too short")
        self.split_search_from = min(round(split_search_from_seconds * SAMPLE_RATE), self.max_speech // 2)
        self._index = 0  # next window index
        self._start: int | None = None  # open region start (samples)
        self._temp_end = 0  # start of the current below-neg-threshold stretch inside an open region, or 0
        self._probs: list[float] = []  # probabilities of the open region's windows (bounded by max_speech)

    @property
    def position(self) -> int:
        """Samples scored so far."""
        return self._index * WINDOW

    @property
    def horizon(self) -> int:
        """No region emitted from now on starts before this sample."""
        return self._start if self._start is not None else self.position

    @property
    def min_future_end(self) -> int:
        """Every region emitted from now on ends at or after this sample."""
        if self._start is not None and self._temp_end:
            return self._temp_end
        return self.position

    @property
    def next_start(self) -> int | None:
        """The exact start of the next region, once it is certain (the open region is long enough to be kept)."""
        if self._start is not None and self.min_future_end - self._start > self.min_speech:
            return self._start
        return None

    def push(self, probs: Probabilities) -> list[SpeechRegion]:
        regions: list[SpeechRegion] = []
        for raw in probs.tolist():
            prob = float(raw)
            here = self._index * WINDOW
            self._index += 1
            if self._start is None:
                if prob >= self.threshold:
                    self._start = here
                    self._temp_end = 0
                    self._probs = [prob]
                continue
            self._probs.append(prob)
            if prob >= self.threshold:
                self._temp_end = 0
            elif prob < self.neg_threshold:
                if not self._temp_end:
                    self._temp_end = here
                if here + WINDOW - self._temp_end >= self.min_silence:
                    self._close(self._temp_end, regions)
                    continue
            if self._index * WINDOW - self._start > self.max_speech:
                self._split(regions)
        return regions

    def finish(self, total_samples: int) -> list[SpeechRegion]:
        """Close an open region at the end of the audio (`total_samples` long: the last window may be padded).

        A region still in speech when the audio ends was cut short by the recording, not ended by a pause: its true
        length is unknown, so it is kept when it is longer than `CUT_SPEECH_SECONDS` even if it is shorter than
        `min_speech` (which is there to drop clicks and breaths between words). A low last window that is mostly the
        zeros `VadStream.finish` padded it with is no pause. So a file that stops in its last word ("No." 0.21 s
        before the end of tests/data/endgame_nagg_nell.wav) keeps that word.
        """
        regions: list[SpeechRegion] = []
        if self._start is not None:
            padded_from = (self._index - 1) * WINDOW  # the last window scored, padded if the audio ends inside it
            if self._temp_end >= padded_from and total_samples - padded_from < WINDOW:
                self._temp_end = 0  # only the padding went quiet
            cut_short = not self._temp_end
            end = min(self._temp_end or total_samples, total_samples)
            self._close(end, regions, min_speech=min(self.min_speech, CUT_SPEECH) if cut_short else self.min_speech)
        return regions

    def _close(self, end: int, regions: list[SpeechRegion], *, min_speech: int | None = None) -> None:
        assert self._start is not None
        if end - self._start > (self.min_speech if min_speech is None else min_speech):
            regions.append(SpeechRegion(self._start, end))
        self._start = None
        self._temp_end = 0
        self._probs = []

    def _split(self, regions: list[SpeechRegion]) -> None:
        """The open region is too long: end it at a pause if it is in one, else at its least speech-like window."""
        assert self._start is not None
        if self._temp_end:
            self._close(self._temp_end, regions)
            return
        first = self.split_search_from // WINDOW
        candidates = self._probs[first:]
        offset = first + int(np.argmin(candidates)) if candidates else len(self._probs) - 1
        offset = max(offset, 1)
        split = self._start + offset * WINDOW
        regions.append(SpeechRegion(self._start, split))
        self._start = split
        self._probs = self._probs[offset:]


def speech_regions(probs: Probabilities, total_samples: int, **options: float) -> list[SpeechRegion]:
    """All regions of a whole probability array (convenience for tests and tools)."""
    segmenter = SpeechSegmenter(**options)
    return segmenter.push(probs) + segmenter.finish(total_samples)
