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
from app.engines.whisper import WhisperEngine
from app.errors import InvalidInput, ModelUnavailable
from app.languages import CODE_BY_NAME, LANGUAGES, display_name
from app.settings import AUTO_MODEL, Settings
from app.transcript import Segment, Task, Transcript
from app.transcription.pipeline import Chunking, TranscriptionRun
from app.transcription.routing import AutoRouter, auto_router
from app.worker.cancel import CancelToken
from app.worker.residency import ModelKey, Residency
from app.worker.runner import Runner

# Names OpenAI clients send that mean "the server's default model".
# Detection decodes in short windows: it stops at the end of the first chunk (chunks do not depend on the window;
# measured on a 10 min file: 0.05 s to the first chunk instead of 0.3 s with the pipeline's 60 s window).
DETECTION_WINDOW_SECONDS = 10.0
DEFAULT_MODEL_ALIASES = frozenset({"", "whisper-1", "default", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"})


class RunSummary(msgspec.Struct, frozen=True):
    """What is only known once all audio has been read; the last item of a stream."""

    duration: float
    language: str
    processing_seconds: float


class Job(msgspec.Struct, frozen=True, kw_only=True):
    model: str  # AUTO_MODEL until `Transcriber.route` has chosen the model
    language: str | None = None
    prompt: str | None = None
    task: Task = "transcribe"
    words: bool = True  # whether the answer shows word timings (else Whisper skips its word alignment)
    keywords: tuple[str, ...] = ()  # words or names to favour (Whisper: hotwords; others: ignored)
    chunking: Chunking | None = None  # the request's VAD/chunker choices; None: the server's settings


class Detection(msgspec.Struct, frozen=True):
    """The language a model detected in a file's first speech (None: the file has no speech)."""

    model: str
    language: str | None
    probability: float
    seconds: float


class Routed(msgspec.Struct, frozen=True):
    """A job with its model chosen; `detection` when the language had to be detected to choose it."""

    job: Job
    detection: Detection | None = None


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
        # MODEL=auto's routing table, checked once (SettingsError naming AUTO_ROUTES when it cannot work)
        self.router = auto_router(settings.engines, self.model_info)

    def model_info(self, name: str) -> ModelInfo:
        """What `name` is and can do, without loading it."""
        return find_model(name, self.engines.models_dir).info

    def is_resident(self, name: str) -> bool:
        if name == AUTO_MODEL:
            return self.router is not None and self.is_resident(self.router.detector)
        return self.residency.holds(ModelKey("speech", name)) or self.residency.holds(ModelKey("language", name))

    def engine(self, name: str) -> Engine:
        """The loaded engine of `name` (a resident model of kind `speech`). Worker thread only."""
        entry = find_model(name, self.engines.models_dir)
        return self.residency.get(
            ModelKey("speech", name),
            lambda: prepare_model(entry, self.engines, self.hub),
            lambda folder: entry.loader(entry, folder, self.engines),
        )

    def detector(self) -> WhisperEngine:
        """The Whisper that detects languages for MODEL=auto: the resident speech model when it is that one, else a
        resident model of kind `language` (so detecting never evicts the speech model). Worker thread only."""
        name = self._router().detector
        if self.residency.holds(ModelKey("speech", name)):
            engine = self.engine(name)
        else:
            entry = find_model(name, self.engines.models_dir)
            engine = self.residency.get(
                ModelKey("language", name),
                lambda: prepare_model(entry, self.engines, self.hub),
                lambda folder: entry.loader(entry, folder, self.engines),
            )
        if not isinstance(engine, WhisperEngine) or engine.info.languages is not None:
            raise ModelUnavailable(
                f"Model {name!r} cannot detect languages: AUTO_DETECT_MODEL needs a multilingual Whisper"
            )
        return engine

    def load_default(self) -> None:
        """Load what MODEL needs for its first request (MODEL=auto: the language detector). Worker thread only."""
        if self.engines.model == AUTO_MODEL:
            self.detector()
        else:
            self.engine(self.engines.model)

    def resolve_name(self, requested: str | None) -> str:
        """The model a request asked for: omitted or an OpenAI alias -> MODEL; `auto` needs AUTO_ROUTES; else it
        must be allowed."""
        name = (requested or "").strip()
        if name in DEFAULT_MODEL_ALIASES:
            name = self.engines.model
        if name == AUTO_MODEL and self.router is not None:
            return name
        if name not in self.engines.allowed_models:
            choices = [*self.engines.allowed_models, *([AUTO_MODEL] if self.router else [])]
            raise InvalidInput(
                f"Model '{name}' is not available on this server; use one of: {', '.join(choices)}",
                about="model",
                code="model_not_found",
            )
        return name

    def job(
        self,
        requested_model: str | None,
        language: str | None,
        prompt: str | None,
        task: Task,
        keywords: tuple[str, ...] = (),
    ) -> Job:
        """Validate a request's parameters before any audio is touched. With `auto` and no language, the model is
        chosen later by `route` (after detection)."""
        name = self.resolve_name(requested_model)
        code = normalise_language(language)
        job = Job(model=name, language=code, prompt=prompt or None, task=task, keywords=keywords)
        if name != AUTO_MODEL:
            return self._checked(job, language)
        router = self._router()
        if code is not None:
            return self._checked(msgspec.structs.replace(job, model=self._route(router, code, task)), language)
        if task == "translate" and not router.translators:
            raise InvalidInput(
                "No model in AUTO_ROUTES can translate; route '*' to a multilingual Whisper model",
                about="model",
                code="translation_unsupported",
            )
        return job

    def live_job(self, job: Job) -> Job:
        """`job` for live dictation: `auto` with no language has no file to detect it from, so it goes to the
        catch-all route (`*`, a multilingual model that finds the language in each utterance itself)."""
        if job.model != AUTO_MODEL:
            return job
        name = self._router().model_for("*")
        if name is None:
            raise InvalidInput(
                "With MODEL=auto, live dictation needs a language (AUTO_ROUTES has no '*' route)", about="language"
            )
        return self._checked(msgspec.structs.replace(job, model=name), None)

    async def route(self, path: Path, job: Job, cancel: CancelToken) -> Routed:
        """`job` with its model chosen: as it is unless it is `auto`; then by the language detected (on the worker,
        from the file's first speech) with the detector model."""
        if job.model != AUTO_MODEL:
            return Routed(job)
        detection = await self.runner.run(lambda: self._detect(path, cancel), cancel)
        router = self._router()
        if detection.language is None:  # no speech: no segments whichever model runs; take the catch-all
            fallback = router.translator_for(None) if job.task == "translate" else router.model_for("*")
            name = fallback or next(iter(router.routes.values()))
        else:
            name = self._route(router, detection.language, job.task)
        routed = msgspec.structs.replace(job, model=name, language=detection.language)
        return Routed(self._checked(routed, detection.language), detection)

    def _detect(self, path: Path, cancel: CancelToken) -> Detection:
        started = time.monotonic()
        engine = self.detector()
        run = TranscriptionRun(
            path,
            engine,
            language=None,
            task="transcribe",
            prompt=None,
            audio=self.audio,
            cancel=cancel,
            window_seconds=DETECTION_WINDOW_SECONDS,
        )
        speech = run.first_speech()
        cancel.raise_if_cancelled()
        language, probability = engine.detect_language(speech) if speech is not None else (None, 0.0)
        return Detection(engine.info.name, language, probability, time.monotonic() - started)

    def _router(self) -> AutoRouter:
        if self.router is None:
            raise InvalidInput("Model 'auto' is not available: AUTO_ROUTES is not set", about="model")
        return self.router

    @staticmethod
    def _route(router: AutoRouter, language: str, task: Task) -> str:
        if task == "translate":
            name = router.translator_for(language)
            if name is None:
                raise InvalidInput(
                    f"No model in AUTO_ROUTES can translate {display_name(language)} speech",
                    about="model",
                    code="translation_unsupported",
                )
            return name
        name = router.model_for(language)
        if name is None:
            routed = ", ".join(display_name(code) for code in router.routes)
            raise InvalidInput(
                f"No model in AUTO_ROUTES for {display_name(language)} (routed: {routed}); add it or '*'",
                about="language",
                code="unsupported_language",
            )
        return name

    def _checked(self, job: Job, language_as_given: str | None) -> Job:
        """`job` if its model can do its language and task (the one language given to the single-language model
        it runs, else unchanged)."""
        info = self.model_info(job.model)
        code = job.language
        if code is not None and not info.supports(code):
            raise InvalidInput(
                f"Model '{info.name}' only supports {info.language_names()}; got language='{language_as_given}'",
                about="language",
                code="unsupported_language",
            )
        if job.task == "translate" and not info.can_translate:
            raise InvalidInput(
                f"Model '{info.name}' cannot translate; use a multilingual Whisper model for /v1/audio/translations",
                about="model",
                code="translation_unsupported",
            )
        if code is None and info.languages is not None and len(info.languages) == 1:
            code = next(iter(info.languages))
        return msgspec.structs.replace(job, language=code)

    def _run(self, path: Path, job: Job, cancel: CancelToken) -> TranscriptionRun:
        if job.model == AUTO_MODEL:
            raise RuntimeError("an auto job must be routed (Transcriber.route) before it runs")
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
            keywords=job.keywords,
            chunking=job.chunking,
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
