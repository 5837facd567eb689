"""Which models are in memory, for every kind of model: loading on demand, LRU eviction, idle unload.

A resident model is keyed by its kind (`speech`: a transcription engine, `speaker`: the speaker encoder of
diarization, `translation`: a text translation model) and its name. MAX_LOADED_MODELS bounds each kind on its own
(with the default of 1: one speech model, one speaker encoder and one translation model at most), so a diarization
or a translation never evicts the speech model a transcription is about to need. Idle unload
(UNLOAD_MODEL_AFTER_S) applies to every kind alike.

Every method that loads or unloads runs on the Runner's single worker thread, so there is no lock: readers on the
event loop (health, metrics, /v1/models) only look at a snapshot of the keys.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal, TypeVar, cast

import msgspec
import structlog

log = structlog.get_logger("app.residency")

ModelKind = Literal["speech", "speaker", "translation", "language"]  # language: MODEL=auto's detector
Prepared = TypeVar("Prepared")
Model = TypeVar("Model")


class ModelKey(msgspec.Struct, frozen=True):
    kind: ModelKind
    name: str


def release_memory() -> None:
    """Give freed heap pages back to the OS so RSS really drops after an unload."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class Residency:
    def __init__(self, max_per_kind: int, *, on_change: Callable[[ModelKey, bool], None] | None = None) -> None:
        self.max_per_kind = max_per_kind
        self._on_change = on_change
        self._models: OrderedDict[ModelKey, object] = OrderedDict()  # least recently used first
        self._last_used: dict[ModelKey, float] = {}

    @property
    def keys(self) -> list[ModelKey]:
        """The resident models, least recently used first."""
        return list(self._models)

    def holds(self, key: ModelKey) -> bool:
        return key in self._models

    def get(self, key: ModelKey, prepare: Callable[[], Prepared], load: Callable[[Prepared], Model]) -> Model:
        """The model for `key`, loaded if needed. Worker thread only.

        `prepare` makes sure the weights are there (fetching them; raising ModelUnavailable) before the least
        recently used model of the same kind is evicted, so a model that cannot be had never costs a resident one;
        `load` then builds the model from what `prepare` returned.
        """
        model = self._models.get(key)
        if model is None:
            prepared = prepare()
            while sum(1 for k in self._models if k.kind == key.kind) >= self.max_per_kind:
                self._unload(next(k for k in self._models if k.kind == key.kind), reason="lru")
            started = time.monotonic()
            model = load(prepared)
            self._models[key] = model
            log.info("model_loaded", kind=key.kind, model=key.name, seconds=round(time.monotonic() - started, 2))
            if self._on_change:
                self._on_change(key, True)
        self._models.move_to_end(key)
        self._last_used[key] = time.monotonic()
        return cast("Model", model)

    def unload_idle(self, idle_seconds: float, now: float | None = None) -> list[ModelKey]:
        """Unload every model unused for `idle_seconds`. Worker thread only."""
        now = time.monotonic() if now is None else now
        idle = [key for key in self._models if now - self._last_used.get(key, now) >= idle_seconds]
        for key in idle:
            self._unload(key, reason="idle")
        return idle

    def unload_all(self) -> None:
        """Unload everything (shutdown). Worker thread only."""
        for key in list(self._models):
            self._unload(key, reason="shutdown")

    def _unload(self, key: ModelKey, *, reason: str) -> None:
        model = self._models.pop(key)
        self._last_used.pop(key, None)
        close = getattr(model, "close", None)
        if callable(close):
            close()
        del model
        release_memory()
        log.info("model_unloaded", kind=key.kind, model=key.name, reason=reason)
        if self._on_change:
            self._on_change(key, False)
