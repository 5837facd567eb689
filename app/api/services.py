"""The long-lived objects routes use, built once by the app factory and kept on `app.state.services`."""

from __future__ import annotations

from app.metrics import Metrics
from app.models import ModelManager
from app.runner import Runner
from app.service import Transcriber
from app.settings import Settings


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.runner = Runner(settings.max_queue, on_reject=self.metrics.rejected)
        self.models = ModelManager(settings, on_change=self._model_changed)
        self.transcriber = Transcriber(settings, self.runner, self.models)

    def _model_changed(self, name: str, loaded: bool) -> None:
        self.metrics.set_model_loaded(name, loaded)

    def cancelled(self) -> None:
        self.metrics.cancelled()
