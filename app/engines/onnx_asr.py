"""Engines running on onnxruntime through onnx-asr (GigaAM, Parakeet): shared loading, batching and word timing.

onnx-asr decodes greedily and reports, per token, the encoder frame where it was emitted. Chunks are recognised in
batches of up to BATCH_SIZE (ADR 58): the graphs get padding masks (`app.engines.onnx_masks`) and each chunk's
features are computed from its own samples, so a chunk's tokens do not depend on its batch-mates. int8 runs one
chunk at a time (its per-tensor activation scale would span the batch). Tokens come from a
SentencePiece-style vocabulary where `▁` (which onnx-asr turns into a leading space) starts a new word; we turn
them into words: start = time of the word's first token, end = time of the token after its last one (capped), or
the last token's time plus one frame, clamped to the chunk.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import onnxruntime as rt

from app.audio.types import SAMPLE_RATE, Audio
from app.engines.devices import onnx_providers, resolve_device
from app.engines.onnx_graph import GraphFolder, GraphPasses, optimized_folder
from app.engines.protocol import ChunkResult, Decoding, ModelInfo
from app.errors import InvalidInput, ModelUnavailable
from app.settings import EngineSettings
from app.transcript import Segment, TokenLogprob, Word
from app.weights.specs import ModelSpec
from app.worker.threads import ort_session_options

log = logging.getLogger(__name__)

MIN_CHUNK_SAMPLES = SAMPLE_RATE // 10  # shorter chunks hold no word; the feature extractor needs a few frames
MAX_WORD_TAIL = 1.0  # seconds a word may extend past its last token when the next token is far away
MAX_PAD_RATIO = 1.25  # a batch never pads its shortest chunk by more than this factor


def session_options(num_threads: int) -> rt.SessionOptions:
    """The process-wide onnxruntime settings (threads from NUM_THREADS) plus full graph optimisation.

    Memory patterns are off: they pay off for inputs of one fixed shape, while our chunks vary in length; measured on
    the full-size int8 GigaAM: 25 MB less peak RSS, same speed.
    """
    options = ort_session_options(num_threads)
    options.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_mem_pattern = False
    return options


def tokens_to_words(
    tokens: Sequence[str],
    timestamps: Sequence[float],
    duration: float,
    frame: float,
    logprobs: Sequence[float] | None = None,
) -> list[Word]:
    """Group decoded tokens into words. A token starting with whitespace starts a new word; whitespace-only
    tokens only separate. Times are clamped to [0, duration] and each word ends at or after its start."""
    groups: list[tuple[str, int, int]] = []  # (text, first token index, last token index)
    text, first, last = "", -1, -1
    for i, token in enumerate(tokens):
        if token[:1].isspace() and text:
            groups.append((text, first, last))
            text = ""
        piece = token.strip()
        if piece:
            if not text:
                first = i
            text += piece
            last = i
    if text:
        groups.append((text, first, last))

    words: list[Word] = []
    last_ms = math.floor(duration * 1000) / 1000  # rounding to ms must not carry a time past the end
    for text, first, last in groups:
        start = min(max(timestamps[first], 0.0), duration)
        last_time = timestamps[last]
        has_next = last + 1 < len(timestamps)
        end = min(timestamps[last + 1], last_time + MAX_WORD_TAIL) if has_next else last_time + frame
        end = min(max(end, start), duration)
        probability = None
        if logprobs is not None:
            mean = sum(logprobs[first : last + 1]) / (last - first + 1)
            probability = round(min(1.0, math.exp(mean)), 3)
        words.append(Word(text, min(round(start, 3), last_ms), min(round(end, 3), last_ms), probability))
    return words


def plan_batches(lengths: Sequence[int], batch_size: int, max_pad_ratio: float = MAX_PAD_RATIO) -> list[list[int]]:
    """Group chunk indices into batches of similar length (longest first) so padding stays small."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) >= batch_size or lengths[current[0]] > lengths[i] * max_pad_ratio):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class RowFeatures:
    """onnx-asr's preprocessor run on each chunk's own samples, the features then padded (with zeros) to a batch.

    onnx-asr pads the waveforms of a batch with zeros before computing features; GigaAM v2's (and NeMo's) centred
    STFT reflects the signal at its end, so a padded chunk's last frames differ from the same chunk alone (measured:
    up to 7.2 in log-mel on the last two frames). Per-chunk features are what a batch of one sees."""

    def __init__(self, preprocessor: Any) -> None:
        self._preprocessor = preprocessor

    def __call__(self, waveforms: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if waveforms.shape[0] == 1:
            return self._preprocessor(waveforms, lengths)  # type: ignore[no-any-return]
        rows = [self._preprocessor(waveforms[i : i + 1, : lengths[i]], lengths[i : i + 1]) for i in range(len(lengths))]
        frames = max(features.shape[-1] for features, _ in rows)
        batch = np.zeros((len(rows), *rows[0][0].shape[1:-1], frames), dtype=rows[0][0].dtype)
        for i, (features, _) in enumerate(rows):
            batch[i, ..., : features.shape[-1]] = features[0]
        return batch, np.concatenate([row_lengths for _, row_lengths in rows])


class OnnxAsrEngine:
    """A loaded onnx-asr model behind the Engine protocol. Greedy decoding; no prompt, no translation."""

    def __init__(
        self,
        info: ModelInfo,
        model: Any,
        *,
        frame: float,
        batch_size: int = 1,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._info = info
        self._model = model  # onnx_asr TimestampedResultsAsrAdapter
        self._frame = frame
        self.batch_size = max(1, batch_size)
        self._on_batch = on_batch  # told the number of chunks of each batch run (the stt_engine_batch_chunks metric)
        if self.batch_size > 1:
            # onnx-asr has no option for it: its preprocessor is the model's `_preprocessor` (pinned version)
            model.asr._preprocessor = RowFeatures(model.asr._preprocessor)

    @property
    def info(self) -> ModelInfo:
        return self._info

    def transcribe(self, chunks: Sequence[Audio], decoding: Decoding) -> list[ChunkResult]:
        # Token timestamps come with the decoding, so words are always given; CTC/RNN-T greedy decoding has no cheap
        # way to favour words, so keywords are ignored; onnx-asr scores each token as it decodes (kept when asked).
        language = decoding.language
        if decoding.task != "transcribe":
            raise InvalidInput(f"Model {self._info.name!r} cannot translate", about="model")
        if language is not None and not self._info.supports(language):
            raise InvalidInput(
                f"Model {self._info.name!r} recognises {self._info.language_names()} only, not {language!r}",
                about="language",
            )
        detected = next(iter(self._info.languages)) if self._info.languages and len(self._info.languages) == 1 else None
        audio = [np.ascontiguousarray(c, dtype=np.float32).reshape(-1) for c in chunks]
        results: list[ChunkResult] = [ChunkResult((), detected) for _ in audio]
        usable = [i for i, a in enumerate(audio) if a.size >= MIN_CHUNK_SAMPLES]
        started = time.perf_counter()
        for batch in plan_batches([audio[i].size for i in usable], self.batch_size):
            indices = [usable[b] for b in batch]
            outputs = self._model.recognize([audio[i] for i in indices], sample_rate=SAMPLE_RATE)
            if self._on_batch is not None:
                self._on_batch(len(indices))
            for i, out in zip(indices, outputs, strict=True):
                results[i] = ChunkResult(self._segments(out, audio[i].size / SAMPLE_RATE, decoding.logprobs), detected)
        seconds = sum(a.size for a in audio) / SAMPLE_RATE
        log.debug(
            "transcribed chunks",
            extra={
                "model": self._info.name,
                "chunks": len(audio),
                "audio_s": seconds,
                "elapsed_s": time.perf_counter() - started,
            },
        )
        return results

    def _segments(self, out: Any, duration: float, logprobs: bool = False) -> tuple[Segment, ...]:
        words = tokens_to_words(out.tokens or [], out.timestamps or [], duration, self._frame, out.logprobs)
        if not words:
            return ()
        text = " ".join(w.word for w in words)
        scored = (
            tuple(TokenLogprob(t, float(p), t.encode()) for t, p in zip(out.tokens, out.logprobs, strict=True))
            if logprobs and out.tokens and out.logprobs is not None
            else ()
        )
        return (Segment(start=words[0].start, end=words[-1].end, text=text, words=tuple(words), logprobs=scored),)


class OnnxAsrLoader(msgspec.Struct, frozen=True, kw_only=True):
    """How a GigaAM or Parakeet model loads through onnx-asr (a registry entry's loader)."""

    info: ModelInfo
    onnx_asr_name: str  # the name onnx-asr knows the model by
    frame_seconds: float  # encoder frame: feature hop x subsampling
    weights: ModelSpec  # its files (the int8 graphs to rewrite for the CPU are among them)
    batch_size: int = 1  # chunks per onnxruntime run: the server sets BATCH_SIZE (registry.speech_loader)
    on_batch: Callable[[int], None] | None = None  # told each run's chunk count (a metric)
    # the onnx-asr feature extractor the model was trained with; its config.json selects it (GigaAM: "version"),
    # and loading refuses a folder that would get another (a GigaAM config.json without "version" gets v2's)
    preprocessor: str | None = None
    # RNN-T: tokens the greedy decoder may emit on one encoder frame; None: what the folder's config.json says
    # (onnx-asr's default 3). GigaAM's own decoder allows 10 (ADR 51).
    max_tokens_per_step: int | None = None

    def batch_size_for(self, engines: EngineSettings) -> int:
        """Chunks per run: `batch_size`, but one for int8 (ADR 58: dynamic int8 quantizes activations with one
        scale over the whole batch, so a chunk's tokens would depend on its batch-mates)."""
        return 1 if engines.onnx_quantization is not None else self.batch_size

    def passes(self, engines: EngineSettings) -> GraphPasses:
        """The rewrites this model's graphs get: int8 ones for onnxruntime's CPU kernels (on the CPU with
        OPTIMIZE_GRAPHS on), padding masks when chunks are batched (fp32 graphs otherwise run well as published)."""
        cpu = engines.onnx_quantization is not None and engines.optimize_graphs
        batched = self.batch_size_for(engines) > 1
        return GraphPasses(cpu=cpu and resolve_device(engines.device) == "cpu", padding_masks=batched)

    def graphs(self, folder: Path, engines: EngineSettings) -> AbstractContextManager[GraphFolder]:
        """The folder to load from: the rewritten graphs (built once, cached in MODELS_DIR/.optimized), or `folder`
        itself when no pass applies."""
        quantization = engines.onnx_quantization
        passes = self.passes(engines)
        if not passes.any():
            return nullcontext(GraphFolder(folder, rewritten=True))
        return optimized_folder(folder, self.weights.files_for(quantization), quantization, passes)

    def __call__(self, folder: Path, engines: EngineSettings) -> OnnxAsrEngine:
        return load_onnx_asr(self, folder, engines)


def load_onnx_asr(spec: OnnxAsrLoader, folder: Path, engines: EngineSettings) -> OnnxAsrEngine:
    """Build the onnxruntime sessions of a GigaAM or Parakeet model from its (complete) folder."""
    import onnx_asr

    name = spec.info.name
    try:
        with spec.graphs(folder, engines) as graphs:
            model = onnx_asr.load_model(
                spec.onnx_asr_name,
                graphs.path,
                quantization=engines.onnx_quantization,
                sess_options=session_options(engines.num_threads),
                providers=onnx_providers(resolve_device(engines.device)),
            )
    except ModelUnavailable:
        raise
    except Exception as exc:  # corrupt or foreign files: say which folder, keep it one line
        raise ModelUnavailable(
            f"Model {name!r} in {folder} could not be loaded ({type(exc).__name__}): delete the folder to re-fetch it"
        ) from exc
    check_preprocessor(spec, folder, model.asr)
    decode_as_trained(spec, model.asr)
    batch_size = spec.batch_size_for(engines)
    if batch_size > 1 and not graphs.rewritten:
        log.warning("batches of one: the model's graphs could not be given padding masks", extra={"model": name})
        batch_size = 1
    return OnnxAsrEngine(
        spec.info, model.with_timestamps(), frame=spec.frame_seconds, batch_size=batch_size, on_batch=spec.on_batch
    )


def check_preprocessor(spec: OnnxAsrLoader, folder: Path, asr: Any) -> None:
    """Refuse a loaded model whose features are not the ones it was trained with: onnx-asr picks them from the
    folder's config.json (GigaAM: its "version"; none: v2's), and wrong ones give fluent nonsense, not an error."""
    found = getattr(asr, "_preprocessor_name", None)
    if spec.preprocessor is not None and found != spec.preprocessor:
        raise ModelUnavailable(
            f"Model {spec.info.name!r} in {folder} would compute {found} features, not {spec.preprocessor}: its "
            "config.json is missing or not the published one; delete the folder to re-fetch it"
        )


def decode_as_trained(spec: OnnxAsrLoader, asr: Any) -> None:
    """Give onnx-asr's greedy RNN-T decoder the per-frame token limit the model's own decoder has (GigaAM: 10, where
    the published config.json says 3: a frame that would emit more loses them). onnx-asr reads it from `config`
    at every decoding (`_max_tokens_per_step`); tests/unit/test_e2e_decoding.py pins both against gigaam's decoder."""
    if spec.max_tokens_per_step is not None:
        asr.config["max_tokens_per_step"] = spec.max_tokens_per_step
