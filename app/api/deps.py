"""The long-lived objects routes use, built once by the app factory and kept on `app.state.services`."""

from __future__ import annotations

from app.diarization.service import Diarizer
from app.metrics import Metrics
from app.settings import Settings
from app.transcription.service import Transcriber
from app.translation.models import TranslationCatalog
from app.translation.service import Translator
from app.worker.residency import ModelKey, Residency
from app.worker.runner import Runner


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.runner = Runner(settings.max_queue, on_reject=self.metrics.rejected)
        self.residency = Residency(settings.max_loaded_models, on_change=self._model_changed)
        self.transcriber = Transcriber(settings, self.runner, self.residency)
        self.diarizer = Diarizer(self.runner, self.residency, num_threads=settings.num_threads)
        catalog = TranslationCatalog(settings.models_dir, hub_repo=settings.translation_hub_repo or None)
        self.translator = Translator(self.runner, self.residency, catalog, num_threads=settings.num_threads)

    def _model_changed(self, key: ModelKey, loaded: bool) -> None:
        self.metrics.set_model_loaded(key.name, loaded)

    def cancelled(self) -> None:
        self.metrics.cancelled()
