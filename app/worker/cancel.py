"""Cooperative cancellation: the API sets the token when the client goes away; long work checks it between batches.

A token may carry a reason (the server shutting down): the work then stops with that error instead of `Cancelled`,
so the request it serves can say why."""

from __future__ import annotations

import threading

from app.errors import AppError, Cancelled


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: AppError | None = None

    def cancel(self, reason: AppError | None = None) -> None:
        if reason is not None and not self._event.is_set():
            self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            if self.reason is not None:
                raise self.reason
            raise Cancelled
