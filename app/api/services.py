"""The long-lived objects routes use, built once by the app factory and kept on `app.state.services`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.models import ModelManager
from app.runner import Runner
from app.service import Transcriber
from app.settings import Settings

if TYPE_CHECKING:
    from app.metrics import Metrics


class Services:
    def __init__(self, settings: Settings, *, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.runner = Runner(settings.max_queue)
        self.models = ModelManager(settings, on_change=self._model_changed)
        self.transcriber = Transcriber(settings, self.runner, self.models)

    def _model_changed(self, name: str, loaded: bool) -> None:
        if self.metrics is not None:
            self.metrics.set_model_loaded(name, loaded)

    def cancelled(self) -> None:
        if self.metrics is not None:
            self.metrics.cancelled()
