"""Transcription as the API layer asks for it: resolve and check the model, run the pipeline on the worker.

No HTTP here: routes hand in a `TranscriptionRequest` once (`plan`), then a file path with the plan, and get back a
`Transcribed` or a stream of segments (see `app/transcription/request.py` for the flow).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

import msgspec

from app.engines.protocol import Decoding, Engine, ModelInfo
from app.engines.registry import find_model, prepare_model, speech_loader
from app.engines.whisper import WhisperEngine
from app.errors import InvalidInput, ModelUnavailable
from app.languages import display_name
from app.model_names import means_default_model
from app.settings import AUTO_MODEL, Settings
from app.transcript import Segment, Task, Transcript
from app.transcription.pipeline import TranscriptionRun
from app.transcription.request import Detection, Plan, TranscriptionRequest, about_languages, language_hint
from app.transcription.routing import AutoRouter, auto_router, smallest_detector
from app.worker.cancel import CancelToken
from app.worker.progress import Ticket
from app.worker.residency import ModelKey, Residency
from app.worker.runner import Runner

# Detection decodes in short windows: it stops at the end of the first chunk (chunks do not depend on the window;
# measured on a 10 min file: 0.05 s to the first chunk instead of 0.3 s with the pipeline's 60 s window).
DETECTION_WINDOW_SECONDS = 10.0


class Transcribed(msgspec.Struct, frozen=True):
    """A finished transcription and the worker time it took."""

    transcript: Transcript
    processing_seconds: float


class RunSummary(msgspec.Struct, frozen=True):
    """What is only known once all audio has been read: the last item of a stream."""

    duration: float
    language: str
    processing_seconds: float


class Transcriber:
    def __init__(
        self,
        settings: Settings,
        runner: Runner,
        residency: Residency,
        on_engine_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.engines = settings.engines
        self.audio = settings.audio
        self.hub = settings.hub
        self.runner = runner
        self.residency = residency
        self.on_engine_batch = on_engine_batch  # chunks per onnxruntime run of a speech model (a metric)
        # MODEL=auto's routing table, checked once (SettingsError naming AUTO_ROUTES when it cannot work)
        self.router = auto_router(settings.engines, self.model_info)
        # who detects languages: auto's detector, else AUTO_DETECT_MODEL or the smallest allowed multilingual Whisper
        self.detector_name = self.router.detector if self.router is not None else self._any_detector()

    def model_info(self, name: str) -> ModelInfo:
        """What `name` is and can do, without loading it."""
        return find_model(name, self.engines.models_dir).info

    def engine(self, name: str) -> Engine:
        """The loaded engine of `name` (a resident model of kind `speech`). Worker thread only."""
        entry = find_model(name, self.engines.models_dir)
        return self.residency.get(
            ModelKey("speech", name),
            lambda: prepare_model(entry, self.engines, self.hub),
            lambda folder: speech_loader(entry, self.audio.batch_size, self.on_engine_batch)(folder, self.engines),
        )

    def detector(self) -> WhisperEngine:
        """The Whisper that detects languages for MODEL=auto: the resident speech model when it is that one, else a
        resident model of kind `language` (so detecting never evicts the speech model). Worker thread only."""
        name = self.detector_name
        if name is None:
            raise InvalidInput(
                "No model on this server detects languages: allow a multilingual Whisper model (such as base)",
                about="model",
                code="language_detection_unavailable",
            )
        if self.residency.holds(ModelKey("speech", name)):
            engine = self.engine(name)
        else:
            entry = find_model(name, self.engines.models_dir)
            engine = self.residency.get(
                ModelKey("language", name),
                lambda: prepare_model(entry, self.engines, self.hub),
                lambda folder: entry.loader(folder, self.engines),
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
        if means_default_model(name):
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

    def plan(self, request: TranscriptionRequest) -> Plan:
        """Check a request before any audio is touched: its model resolved, its language normalised and supported.
        With `auto` and no language, the model is chosen later by `route` (after detection)."""
        name = self.resolve_name(request.model)
        code, candidates = language_hint(request.language, request.languages)
        for candidate in candidates:  # several languages[]: each one the model (or a route of auto) can do
            with about_languages():
                if name == AUTO_MODEL:
                    self._route(self._router(), candidate, request.task)
                else:
                    self._checked(Plan(model=name, decoding=Decoding(language=candidate, task=request.task)), candidate)
        decoding = Decoding(
            language=code,
            task=request.task,
            prompt=request.prompt or None,
            words=request.words,
            keywords=request.keywords,
            logprobs=request.logprobs,
        )
        plan = Plan(model=name, decoding=decoding, chunking=request.chunking, languages=candidates)
        as_given = request.language or code
        with about_languages(applies=bool(request.languages) and not request.language):
            if name != AUTO_MODEL:
                return self._checked(plan, as_given)
            router = self._router()
            if code is not None:
                return self._checked(self._with_model(plan, self._route(router, code, request.task)), as_given)
        if request.task == "translate" and not router.translators:
            raise InvalidInput(
                "No model in AUTO_ROUTES can translate; route '*' to a multilingual Whisper model",
                about="model",
                code="translation_unsupported",
            )
        return plan

    def live_plan(self, request: TranscriptionRequest) -> Plan:
        """`plan(request)` for live dictation: `auto` with no language has no file to detect it from, so it goes to
        the catch-all route (`*`, a multilingual model that finds the language in each utterance itself)."""
        plan = self.plan(request)
        if plan.routed:
            return plan
        name = self._router().model_for("*")
        if name is None:
            raise InvalidInput(
                "With MODEL=auto, live dictation needs a language (AUTO_ROUTES has no '*' route)", about="language"
            )
        return self._checked(self._with_model(plan, name), None)

    async def route(self, path: Path, plan: Plan, cancel: CancelToken, ticket: Ticket | None = None) -> Plan:
        """`plan` with its model chosen: as it is unless it is `auto`; then by the language detected (on the worker,
        from the file's first speech) with the detector model. `ticket`: the request's place in the queue."""
        if plan.routed:
            return plan
        detection = await self.runner.run(lambda: self._detect(path, cancel, plan.languages), cancel, ticket=ticket)
        router = self._router()
        if detection.language is None:  # no speech: no segments whichever model runs; take the catch-all
            fallback = router.translator_for(None) if plan.decoding.task == "translate" else router.model_for("*")
            name = fallback or next(iter(router.routes.values()))
        else:
            name = self._route(router, detection.language, plan.decoding.task)
        decoding = msgspec.structs.replace(plan.decoding, language=detection.language)
        routed = msgspec.structs.replace(plan, model=name, decoding=decoding, detection=detection)
        return self._checked(routed, detection.language)

    async def detect_language(self, path: Path, cancel: CancelToken) -> Detection:
        """The language of a file's first speech (the first VAD chunk), by the language detector."""
        return await self.runner.run(lambda: self._detect(path, cancel), cancel)

    def _any_detector(self) -> str | None:
        if self.engines.auto_detect_model:
            return self.engines.auto_detect_model

        def info_of(name: str) -> ModelInfo:
            try:
                return self.model_info(name)
            except InvalidInput:  # an allowed name no weights answer to yet: not a detector
                return ModelInfo(name=name, family="unknown", languages=frozenset())

        return smallest_detector(self.engines, info_of)

    def _detect(self, path: Path, cancel: CancelToken, among: tuple[str, ...] = ()) -> Detection:
        """The detector's language of the file's first speech; with `among` (several languages[]), the likeliest of
        those."""
        started = time.monotonic()
        engine = self.detector()
        run = TranscriptionRun(
            path, engine, Decoding(), audio=self.audio, cancel=cancel, window_seconds=DETECTION_WINDOW_SECONDS
        )
        speech = run.first_speech()
        cancel.raise_if_cancelled()
        language, probability = engine.detect_language(speech, among) if speech is not None else (None, 0.0)
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

    @staticmethod
    def _with_model(plan: Plan, name: str) -> Plan:
        return msgspec.structs.replace(plan, model=name)

    def _checked(self, plan: Plan, language_as_given: str | None) -> Plan:
        """`plan` if its model can do its language and task (with the one language of a single-language model
        filled in)."""
        info = self.model_info(plan.model)
        decoding = plan.decoding
        code = decoding.language
        if code is not None and not info.supports(code):
            raise InvalidInput(
                f"Model '{info.name}' only supports {info.language_names()}; got language='{language_as_given}'",
                about="language",
                code="unsupported_language",
            )
        if decoding.task == "translate" and not info.can_translate:
            raise InvalidInput(
                f"Model '{info.name}' cannot translate; use a multilingual Whisper model for /v1/audio/translations",
                about="model",
                code="translation_unsupported",
            )
        if code is None and info.languages is not None and len(info.languages) == 1:
            decoding = msgspec.structs.replace(decoding, language=next(iter(info.languages)))
        return msgspec.structs.replace(plan, decoding=decoding)

    def _run(self, path: Path, plan: Plan, cancel: CancelToken, ticket: Ticket) -> TranscriptionRun:
        if not plan.routed:
            raise RuntimeError("an auto plan must be routed (Transcriber.route) before it runs")
        return TranscriptionRun(
            path,
            self.engine(plan.model),
            plan.decoding,
            audio=self.audio,
            cancel=cancel,
            chunking=plan.chunking,
            between_batches=self.runner.serve_live,
            small_batches=lambda: self.runner.live_sessions > 0,
            progressed=ticket.advance,
        )

    async def transcribe(
        self, path: Path, plan: Plan, cancel: CancelToken, ticket: Ticket | None = None
    ) -> Transcribed:
        """The whole transcription. `ticket`: its place in the queue and its progress (the API's, to watch them)."""
        ticket = _ticket_of(ticket, plan)

        def work() -> Transcribed:
            started = time.monotonic()
            run = self._run(path, plan, cancel, ticket)
            segments = tuple(run.segments())
            language = run.language or plan.decoding.language or "en"
            transcript = Transcript(
                language=language, duration=run.duration, segments=segments, task=plan.decoding.task
            )
            return Transcribed(transcript, time.monotonic() - started)

        return await self.runner.run(work, cancel, ticket=ticket)

    def stream(
        self, path: Path, plan: Plan, cancel: CancelToken, ticket: Ticket | None = None
    ) -> AsyncGenerator[Segment | RunSummary]:
        """Segments as each batch finishes, then one RunSummary."""
        ticket = _ticket_of(ticket, plan)

        def produce(emit: Callable[[Segment | RunSummary], None]) -> None:
            started = time.monotonic()
            run = self._run(path, plan, cancel, ticket)
            for segment in run.segments():
                emit(segment)
            language = run.language or plan.decoding.language or "en"
            emit(RunSummary(run.duration, language, time.monotonic() - started))

        return self.runner.stream(produce, cancel, ticket)


def _ticket_of(ticket: Ticket | None, plan: Plan) -> Ticket:
    """The work's ticket, naming the model that runs it (its speed is measured under that name)."""
    if ticket is None:
        return Ticket(model=plan.model)
    ticket.model = plan.model
    return ticket
