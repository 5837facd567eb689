"""Text translation as the API layer asks for it, run on the worker; translation models are resident models."""

from __future__ import annotations

import time

import msgspec

from app.translation.models import (
    LoadedTranslation,
    TranslationCatalog,
    TranslationModel,
    load_translation_model,
    translate_text,
)
from app.worker.cancel import CancelToken
from app.worker.residency import ModelKey, Residency
from app.worker.runner import Runner


class Translation(msgspec.Struct, frozen=True):
    text: str
    model: str
    processing_seconds: float


class Translator:
    def __init__(self, runner: Runner, residency: Residency, catalog: TranslationCatalog, *, num_threads: int) -> None:
        self.runner = runner
        self.residency = residency
        self.catalog = catalog
        self.num_threads = num_threads

    def _loaded(self, model: TranslationModel) -> LoadedTranslation:
        return self.residency.get(
            ModelKey("translation", model.name),
            lambda: model,
            lambda m: load_translation_model(self.catalog.models_dir, m, num_threads=self.num_threads),
        )

    async def translate(self, text: str, source: str, target: str, cancel: CancelToken) -> Translation:
        def work() -> Translation:
            started = time.monotonic()
            translated, model = translate_text(text, source, target, self.catalog, self._loaded)
            return Translation(translated, model.name, time.monotonic() - started)

        return await self.runner.run(work, cancel)
