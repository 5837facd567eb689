"""Whisper through faster-whisper (CTranslate2): chunks of 16 kHz mono float32 in, segments with words out.

    engine = load_engine("tiny.en", engines)          # app.engines.registry: find, prepare, load
    results = engine.transcribe([chunk1, chunk2], Decoding(language="en"))

Where the weights come from (the bundled `tiny.en`, the hub, or an operator's conversion in MODELS_DIR) is the
registry's business; `WhisperLoader` gets a complete folder.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from app.audio.types import Audio
from app.engines.devices import resolve_device
from app.engines.protocol import ChunkResult, Decoding, ModelInfo
from app.errors import ModelUnavailable
from app.settings import EngineSettings
from app.transcript import Segment, Task, TokenLogprob, Word

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
            decoding = msgspec.structs.replace(decoding, language="en", task="transcribe")
        results = [self._transcribe_one(chunk, decoding) for chunk in chunks]
        if decoding.logprobs:
            task = decoding.task
            results = [with_token_logprobs(self.model, c, r, task) for c, r in zip(chunks, results, strict=True)]
        return results

    def detect_language(self, audio: Audio, among: Collection[str] = ()) -> tuple[str, float]:
        """The language of (at most 30 s of) speech and its probability, from Whisper's first decoder step; with
        `among`, the likeliest of those languages (OpenAI's `languages[]`: the audio is in one of them)."""
        if self.english_only:
            return "en", 1.0
        language, probability, ranked = self.model.detect_language(
            audio=np.ascontiguousarray(audio, dtype=np.float32), vad_filter=False, language_detection_segments=1
        )
        if among:
            language, probability = next(((c, p) for c, p in ranked if c in among), (language, probability))
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


def with_token_logprobs(model: Any, chunk: Audio, result: ChunkResult, task: Task) -> ChunkResult:
    """`result` with each segment's text tokens and their log probabilities (OpenAI's `include[]=logprobs`).

    faster-whisper keeps the decoder's per-token scores to itself; CTranslate2's `Whisper.align` (what its word
    timestamps use) gives the probability of each text token given the audio and the tokens before it, which for
    greedy decoding are the scores the tokens were chosen with. It costs one more encoder pass of the chunk, so it
    runs only when asked for. Tokens' bytes come from the byte-level vocabulary (a token may hold part of a
    character)."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    multilingual = bool(model.model.is_multilingual)
    language = result.language or "en"
    tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task=task, language=language)
    per_segment = [[t for t in segment.tokens if t < tokenizer.eot] for segment in result.segments]
    text_tokens = [t for tokens in per_segment for t in tokens]
    if not text_tokens:
        return result
    features = model.feature_extractor(np.ascontiguousarray(chunk, dtype=np.float32))
    frames = min(features.shape[-1] - 1, model.feature_extractor.nb_max_frames)
    encoder_output = model.encode(pad_or_trim(features[:, :frames]))
    (alignment,) = model.model.align(encoder_output, tokenizer.sot_sequence, [text_tokens], frames)
    probabilities = iter(alignment.text_token_probs)
    segments = []
    for segment, tokens in zip(result.segments, per_segment, strict=True):
        scored = []
        for token in tokens:
            data = _token_bytes(model.hf_tokenizer.id_to_token(token))
            logprob = math.log(max(float(next(probabilities)), 1e-12))
            scored.append(TokenLogprob(data.decode("utf-8", errors="replace"), logprob, data))
        segments.append(msgspec.structs.replace(segment, logprobs=tuple(scored)))
    return msgspec.structs.replace(result, segments=tuple(segments))


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet (Whisper's vocabulary): each printable stand-in character -> its byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    stand_ins = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            stand_ins.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, stand_ins, strict=True)}


def _token_bytes(piece: str | None) -> bytes:
    decoder = _byte_decoder()
    return bytes(decoder[c] for c in piece or "" if c in decoder)


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
