"""The long-lived objects routes use, built once by the app factory and kept on `app.state.services`."""

from __future__ import annotations

from app.api.metrics import Metrics
from app.api.resume import ResumableJobs
from app.diarization.service import Diarizer
from app.job_store import JobStore
from app.settings import Settings
from app.tls import ServerCertificate
from app.transcription.catalog import ModelCatalog
from app.transcription.live import LiveTranscriber
from app.transcription.service import Transcriber
from app.translation.models import TranslationCatalog, hub_downloader
from app.translation.service import Translator
from app.worker.residency import ModelKey, Residency
from app.worker.runner import Runner


class Services:
    def __init__(self, settings: Settings, *, tls: ServerCertificate | None = None) -> None:
        self.settings = settings
        self.tls = tls  # the certificate served (None: plain http)
        self.metrics = Metrics()
        self.runner = Runner(
            settings.limits.max_queue, max_uploads=settings.limits.max_uploads, on_reject=self.metrics.rejected
        )
        # jobs whose client hung up wait RESUME_GRACE_SECONDS for its retry; abandoned ones count as cancelled
        self.resumable = ResumableJobs(
            settings.limits.resume_grace_seconds,
            on_abandoned=self.metrics.cancelled,
            admitted=lambda: self.runner.admitted,
        )
        self.jobs = JobStore(settings.jobs)  # POST /v1/jobs: held in memory only
        self.residency = Residency(settings.engines.max_loaded_models, on_change=self._model_changed)
        self.transcriber = Transcriber(
            settings, self.runner, self.residency, on_engine_batch=self.metrics.observe_engine_batch
        )
        # what is offered and what is resident: /v1/models, /health, the contract (SettingsError for an unknown model)
        self.catalog = ModelCatalog(
            settings.engines, self.transcriber.model_info, self.transcriber.router, self.residency
        )
        self.live = LiveTranscriber(
            self.transcriber, partial_interval_seconds=settings.realtime.realtime_partial_interval_ms / 1000
        )
        self.diarizer = Diarizer(self.runner, self.residency, num_threads=settings.engines.num_threads)
        catalog = TranslationCatalog(
            settings.engines.models_dir,
            hub_repo=settings.hub.translation_hub_repo or None,
            downloader=hub_downloader(settings.hub),
        )
        self.translator = Translator(self.runner, self.residency, catalog, num_threads=settings.engines.num_threads)

    def _model_changed(self, key: ModelKey, loaded: bool) -> None:
        self.metrics.set_model_loaded(key.name, loaded)

    def cancelled(self) -> None:
        self.metrics.cancelled()

    def begin_shutdown(self) -> None:
        """SIGTERM (or Ctrl-C): nothing new is taken, and every request in progress is answered now, in OpenAI's
        shape (503 + Retry-After; a stream's error event), as its work stops at its next batch boundary. Then the
        HTTP server's graceful shutdown has only those answers to wait for. Event loop only."""
        self.runner.stop_all()
        self.resumable.abandon_all()
