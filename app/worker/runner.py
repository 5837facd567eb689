"""The Runner: one inference worker thread, FIFO, with admission control and cooperative cancellation.

A request first holds an upload slot while its body streams in (at most MAX_UPLOADS at once), then a queue slot from
the moment its body is read until its job is finished (queued + running; at most MAX_QUEUE). Past either limit a
request is refused at once (`QueueFull`, with a retry-after hint), so clients still sending their bytes never take
the slots of jobs ready to run. Jobs run one at a time on a single
thread, so the engine and the model manager never see concurrent calls and need no locks of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from app.errors import Cancelled, QueueFull
from app.worker.cancel import CancelToken

T = TypeVar("T")
Item = TypeVar("Item")

_DONE = object()


class Runner:
    def __init__(
        self,
        max_queue: int,
        *,
        max_uploads: int | None = None,
        retry_after_seconds: int = 10,
        on_reject: Callable[[], None] | None = None,
    ) -> None:
        self.max_queue = max_queue
        self.max_uploads = max_queue if max_uploads is None else max_uploads
        self._uploading = 0
        self._on_reject = on_reject
        self.retry_after_seconds = retry_after_seconds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self.last_activity = time.monotonic()

    @property
    def admitted(self) -> int:
        """Requests whose body is read and whose job is not finished: queued or running."""
        return self._admitted

    @property
    def uploading(self) -> int:
        """Requests whose body is still streaming in."""
        return self._uploading

    @property
    def running(self) -> int:
        return self._running

    @contextlib.contextmanager
    def upload_slot(self) -> Iterator[None]:
        """Hold an upload slot while a request's body streams in; QueueFull when MAX_UPLOADS are in progress."""
        with self._lock:
            if self._uploading >= self.max_uploads:
                raise self._refuse(f"{self._uploading} uploads are in progress (MAX_UPLOADS={self.max_uploads})")
            self._uploading += 1
        try:
            yield
        finally:
            with self._lock:
                self._uploading -= 1

    @contextlib.contextmanager
    def admission(self) -> Iterator[None]:
        """Hold a queue slot until the request's job is finished; QueueFull when none is left."""
        with self._lock:
            if self._admitted >= self.max_queue:
                raise self._refuse(f"{self._admitted} requests are queued or running (MAX_QUEUE={self.max_queue})")
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    def _refuse(self, why: str) -> QueueFull:
        if self._on_reject is not None:
            self._on_reject()
        return QueueFull(
            f"The server is busy: {why}. Retry later.", retry_after_seconds=self.retry_after_seconds, code="queue_full"
        )

    def _wrap(self, fn: Callable[[], T], cancel: CancelToken) -> Callable[[], T]:
        def job() -> T:
            cancel.raise_if_cancelled()  # the client left while the job was queued
            self._running += 1
            try:
                return fn()
            finally:
                self._running -= 1
                self.last_activity = time.monotonic()

        return job

    async def run(self, fn: Callable[[], T], cancel: CancelToken) -> T:
        """Run `fn` on the worker and wait for it. If the awaiting task is cancelled, the job is told to stop."""
        future: Future[T] = self._executor.submit(self._wrap(fn, cancel))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.cancel()
            raise

    def run_internal(self, fn: Callable[[], T]) -> Future[T]:
        """Housekeeping (idle unload) on the worker thread, outside admission, in FIFO order with the jobs."""
        return self._executor.submit(fn)

    async def stream(
        self, produce: Callable[[Callable[[Item], None]], None], cancel: CancelToken
    ) -> AsyncGenerator[Item]:
        """Run `produce(emit)` on the worker; yield each emitted item here as soon as it is emitted.

        Leaving the iteration early (client gone) cancels the job, which stops at its next batch boundary.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()

        def emit(item: Item) -> None:
            cancel.raise_if_cancelled()
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def job() -> None:
            produce(emit)

        future = self._executor.submit(self._wrap(job, cancel))
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, _DONE))
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                yield item  # type: ignore[misc]
            future.result()  # re-raise the job's error, if any
        finally:
            if not future.done():
                cancel.cancel()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


__all__ = ["Cancelled", "Runner"]
