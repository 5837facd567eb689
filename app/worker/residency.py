"""The model manager: which engines are resident, loading on demand, LRU eviction and idle unload.

Every method that loads or unloads runs on the Runner's single worker thread, so there is no lock ordering to
think about: the only shared state readers on the event loop see is a snapshot of names.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import time
from collections import OrderedDict
from collections.abc import Callable

import structlog

from app.engines.protocol import Engine, ModelInfo
from app.engines.registry import load_engine, model_info, prepare_model
from app.settings import Settings

log = structlog.get_logger("app.worker.residency")


def _release_memory() -> None:
    """Give freed heap pages back to the OS so RSS really drops after an unload."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class ModelManager:
    def __init__(
        self,
        settings: Settings,
        *,
        loader: Callable[[str, Settings], Engine] = load_engine,
        prepare: Callable[[str, Settings], None] = prepare_model,
        on_change: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.settings = settings
        self._loader = loader
        self._prepare = prepare
        self._on_change = on_change
        self._loaded: OrderedDict[str, Engine] = OrderedDict()
        self._last_used: dict[str, float] = {}

    def info(self, name: str) -> ModelInfo:
        return model_info(name, self.settings)

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    @property
    def loaded_names(self) -> list[str]:
        return list(self._loaded)

    def get(self, name: str) -> Engine:
        """The engine for `name`, loading it (and evicting the least recently used) if needed. Worker thread only."""
        engine = self._loaded.get(name)
        if engine is None:
            self._prepare(name, self.settings)  # missing weights fail here, before a resident model is evicted
            while len(self._loaded) >= self.settings.max_loaded_models:
                self._unload(next(iter(self._loaded)), reason="lru")
            started = time.monotonic()
            engine = self._loader(name, self.settings)
            self._loaded[name] = engine
            log.info("model_loaded", model=name, seconds=round(time.monotonic() - started, 2))
            if self._on_change:
                self._on_change(name, True)
        self._loaded.move_to_end(name)
        self._last_used[name] = time.monotonic()
        return engine

    def unload_idle(self, idle_seconds: float, now: float | None = None) -> list[str]:
        """Unload every model unused for `idle_seconds`. Worker thread only."""
        now = time.monotonic() if now is None else now
        idle = [name for name in self._loaded if now - self._last_used.get(name, now) >= idle_seconds]
        for name in idle:
            self._unload(name, reason="idle")
        return idle

    def unload_all(self) -> None:
        for name in list(self._loaded):
            self._unload(name, reason="shutdown")

    def _unload(self, name: str, *, reason: str) -> None:
        engine = self._loaded.pop(name)
        self._last_used.pop(name, None)
        close = getattr(engine, "close", None)
        if callable(close):
            close()
        del engine
        _release_memory()
        log.info("model_unloaded", model=name, reason=reason)
        if self._on_change:
            self._on_change(name, False)
