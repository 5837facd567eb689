"""Transcription as the API layer asks for it: resolve and check the model, run the pipeline on the worker.

No HTTP here: routes hand in a file path and parameters, and get back a `Transcript` or a stream of segments.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

import msgspec

from app.engines.protocol import Engine, ModelInfo
from app.engines.registry import find_model, prepare_model
from app.errors import InvalidInput
from app.languages import CODE_BY_NAME, LANGUAGES
from app.settings import Settings
from app.transcript import Segment, Task, Transcript
from app.transcription.pipeline import TranscriptionRun
from app.worker.cancel import CancelToken
from app.worker.residency import ModelKey, Residency
from app.worker.runner import Runner

# Names OpenAI clients send that mean "the server's default model".
DEFAULT_MODEL_ALIASES = frozenset({"", "whisper-1", "default", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"})


class RunSummary(msgspec.Struct, frozen=True):
    """What is only known once all audio has been read; the last item of a stream."""

    duration: float
    language: str
    processing_seconds: float


class Job(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    language: str | None = None
    prompt: str | None = None
    task: Task = "transcribe"
    words: bool = True  # whether the answer shows word timings (else Whisper skips its word alignment)


def normalise_language(language: str | None) -> str | None:
    """'EN', 'en-US', 'english' -> 'en'; empty -> None (let the model detect it)."""
    if language is None or not language.strip():
        return None
    value = language.strip().lower().replace("_", "-")
    if value in CODE_BY_NAME:
        return CODE_BY_NAME[value]
    code = value.split("-", 1)[0]
    if not code.isalpha() or not 2 <= len(code) <= 3:
        raise InvalidInput(f"Invalid language '{language}': use an ISO-639-1 code such as 'en'", about="language")
    if code not in LANGUAGES:  # no engine here knows it (Whisper's table covers them all); faster-whisper would raise
        raise InvalidInput(
            f"Unknown language '{language}': use an ISO-639-1 code such as 'en'",
            about="language",
            code="unsupported_language",
        )
    return code


class Transcriber:
    def __init__(self, settings: Settings, runner: Runner, residency: Residency) -> None:
        self.engines = settings.engines
        self.audio = settings.audio
        self.hub = settings.hub
        self.runner = runner
        self.residency = residency

    def model_info(self, name: str) -> ModelInfo:
        """What `name` is and can do, without loading it."""
        return find_model(name, self.engines.models_dir).info

    def is_resident(self, name: str) -> bool:
        return self.residency.holds(ModelKey("speech", name))

    def engine(self, name: str) -> Engine:
        """The loaded engine of `name` (a resident model of kind `speech`). Worker thread only."""
        entry = find_model(name, self.engines.models_dir)
        return self.residency.get(
            ModelKey("speech", name),
            lambda: prepare_model(entry, self.engines, self.hub),
            lambda folder: entry.loader(entry, folder, self.engines),
        )

    def resolve_model(self, requested: str | None) -> ModelInfo:
        """The model a request asked for: omitted or an OpenAI alias -> MODEL; else it must be allowed."""
        name = (requested or "").strip()
        if name in DEFAULT_MODEL_ALIASES:
            name = self.engines.model
        if name not in self.engines.allowed_models:
            raise InvalidInput(
                f"Model '{name}' is not available on this server; use one of: {', '.join(self.engines.allowed_models)}",
                about="model",
                code="model_not_found",
            )
        return self.model_info(name)

    def job(self, requested_model: str | None, language: str | None, prompt: str | None, task: Task) -> Job:
        """Validate a request's parameters before any audio is touched."""
        info = self.resolve_model(requested_model)
        code = normalise_language(language)
        if code is not None and not info.supports(code):
            raise InvalidInput(
                f"Model '{info.name}' only supports {info.language_names()}; got language='{language}'",
                about="language",
                code="unsupported_language",
            )
        if task == "translate" and not info.can_translate:
            raise InvalidInput(
                f"Model '{info.name}' cannot translate; use a multilingual Whisper model for /v1/audio/translations",
                about="model",
                code="translation_unsupported",
            )
        if code is None and info.languages is not None and len(info.languages) == 1:
            code = next(iter(info.languages))
        return Job(model=info.name, language=code, prompt=prompt or None, task=task)

    def _run(self, path: Path, job: Job, cancel: CancelToken) -> TranscriptionRun:
        engine = self.engine(job.model)
        return TranscriptionRun(
            path,
            engine,
            language=job.language,
            task=job.task,
            prompt=job.prompt,
            audio=self.audio,
            cancel=cancel,
            words=job.words,
            between_batches=self.runner.serve_live,
            small_batches=lambda: self.runner.live_sessions > 0,
        )

    async def transcribe(self, path: Path, job: Job, cancel: CancelToken) -> tuple[Transcript, RunSummary]:
        def work() -> tuple[Transcript, RunSummary]:
            started = time.monotonic()
            run = self._run(path, job, cancel)
            segments = tuple(run.segments())
            language = run.language or job.language or "en"
            transcript = Transcript(language=language, duration=run.duration, segments=segments, task=job.task)
            return transcript, RunSummary(run.duration, language, time.monotonic() - started)

        return await self.runner.run(work, cancel)

    def stream(self, path: Path, job: Job, cancel: CancelToken) -> AsyncGenerator[Segment | RunSummary]:
        """Segments as each batch finishes, then one RunSummary."""

        def produce(emit: Callable[[Segment | RunSummary], None]) -> None:
            started = time.monotonic()
            run = self._run(path, job, cancel)
            for segment in run.segments():
                emit(segment)
            language = run.language or job.language or "en"
            emit(RunSummary(run.duration, language, time.monotonic() - started))

        return self.runner.stream(produce, cancel)
