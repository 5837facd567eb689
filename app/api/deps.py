"""The long-lived objects routes use, built once by the app factory and kept on `app.state.services`."""

from __future__ import annotations

from app.metrics import Metrics
from app.settings import Settings
from app.transcription.service import Transcriber
from app.translation.translator import Translator
from app.worker.residency import ModelManager
from app.worker.runner import Runner


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.runner = Runner(settings.max_queue, on_reject=self.metrics.rejected)
        self.models = ModelManager(settings, on_change=self._model_changed)
        self.transcriber = Transcriber(settings, self.runner, self.models)
        self._translator: Translator | None = None

    def translator(self) -> Translator:
        """The text translator (Reflector's /translate), made on first use; it loads its models lazily too."""
        if self._translator is None:
            self._translator = Translator(
                self.settings.models_dir,
                num_threads=self.settings.num_threads,
                hub_repo=self.settings.translation_hub_repo or None,
            )
        return self._translator

    def _model_changed(self, name: str, loaded: bool) -> None:
        self.metrics.set_model_loaded(name, loaded)

    def cancelled(self) -> None:
        self.metrics.cancelled()
