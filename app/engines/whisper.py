"""Whisper through faster-whisper (CTranslate2): chunks of 16 kHz mono float32 in, segments with words out.

    engine = load_engine("tiny.en", engines)          # app.engines.registry: find, prepare, load
    results = engine.transcribe([chunk1, chunk2], Decoding(language="en"))

Where the weights come from (the bundled `tiny.en`, the hub, or an operator's conversion in MODELS_DIR) is the
registry's business; `WhisperLoader` gets a complete folder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from app.audio.types import Audio
from app.engines.devices import resolve_device
from app.engines.protocol import ChunkResult, Decoding, ModelInfo
from app.errors import ModelUnavailable
from app.settings import EngineSettings
from app.transcript import Segment, Word

log = logging.getLogger(__name__)


class WhisperEngine:
    """A loaded faster-whisper model implementing the Engine protocol."""

    def __init__(
        self,
        model: Any,
        info: ModelInfo,
        *,
        beam_size: int = 1,
    ) -> None:
        self.model = model
        self._info = info
        self.beam_size = beam_size

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def english_only(self) -> bool:
        return self._info.languages == frozenset({"en"})

    def transcribe(self, chunks: Sequence[Audio], decoding: Decoding) -> list[ChunkResult]:
        if self.english_only:
            decoding = Decoding(language="en", prompt=decoding.prompt, words=decoding.words, keywords=decoding.keywords)
        return [self._transcribe_one(chunk, decoding) for chunk in chunks]

    def detect_language(self, audio: Audio) -> tuple[str, float]:
        """The language of (at most 30 s of) speech and its probability, from Whisper's first decoder step."""
        if self.english_only:
            return "en", 1.0
        language, probability, _ = self.model.detect_language(
            audio=np.ascontiguousarray(audio, dtype=np.float32), vad_filter=False, language_detection_segments=1
        )
        return str(language), float(probability)

    def _transcribe_one(self, chunk: Audio, decoding: Decoding) -> ChunkResult:
        segments, info = self.model.transcribe(
            np.ascontiguousarray(chunk, dtype=np.float32),
            language=decoding.language,
            task=decoding.task,
            initial_prompt=decoding.prompt or None,
            # faster-whisper puts hotwords before the prompt in the decoder's previous-text context (when no prefix).
            hotwords=", ".join(decoding.keywords) or None,
            word_timestamps=decoding.words,
            vad_filter=False,
            beam_size=self.beam_size,
            condition_on_previous_text=False,
        )
        return ChunkResult(tuple(_segment(s) for s in segments), language=info.language)


def _segment(raw: Any) -> Segment:
    words = tuple(
        Word(w.word.strip(), round(float(w.start), 3), round(float(w.end), 3), round(float(w.probability), 4))
        for w in (raw.words or ())
        if w.word.strip()
    )
    return Segment(
        start=round(float(raw.start), 3),
        end=round(float(raw.end), 3),
        text=raw.text.strip(),
        words=words,
        tokens=tuple(int(t) for t in raw.tokens),
        avg_logprob=float(raw.avg_logprob),
        compression_ratio=float(raw.compression_ratio),
        no_speech_prob=float(raw.no_speech_prob),
        temperature=float(raw.temperature) if raw.temperature is not None else None,
    )


class WhisperLoader(msgspec.Struct, frozen=True, kw_only=True):
    """How a faster-whisper model loads (a registry entry's loader)."""

    name: str
    beam_size: int = 1

    def __call__(self, folder: Path, engines: EngineSettings) -> WhisperEngine:
        return load_whisper(self.name, folder, engines, beam_size=self.beam_size)


def load_whisper(name: str, folder: Path, engines: EngineSettings, *, beam_size: int = 1) -> WhisperEngine:
    """Load a faster-whisper model from its (complete) folder: int8 on CPU, int8_float16 on CUDA."""
    from faster_whisper import WhisperModel

    device = resolve_device(engines.device)
    try:
        model = WhisperModel(
            str(folder),
            device=device,
            compute_type="int8" if device == "cpu" else "int8_float16",
            cpu_threads=engines.num_threads,
            num_workers=1,
            local_files_only=True,
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelUnavailable(f"Whisper model at {folder} could not be loaded: {exc}") from None
    info = whisper_info(name, multilingual=model.model.is_multilingual)
    return WhisperEngine(model, info, beam_size=beam_size)


# Whisper checkpoints that were not trained to translate (besides the English-only ones).
_NO_TRANSLATION = ("distil-", "turbo")


def whisper_info(name: str, *, multilingual: bool | None = None) -> ModelInfo:
    """What a Whisper model can do; `multilingual` (read from a loaded model) overrides the name's `.en` hint."""
    english_only = name.endswith(".en") if multilingual is None else not multilingual
    return ModelInfo(
        name=name,
        family="whisper",
        languages=frozenset({"en"}) if english_only else None,
        can_translate=not english_only and not any(marker in name for marker in _NO_TRANSLATION),
        owned_by="openai",
    )
