"""The Runner: one inference worker thread, FIFO, with admission control and cooperative cancellation.

A request first holds an upload slot while its body streams in (at most MAX_UPLOADS at once), then a queue slot from
the moment its body is read until its job is finished (queued + running; at most MAX_QUEUE). Past either limit a
request is refused at once (`QueueFull`, with a retry-after hint), so clients still sending their bytes never take
the slots of jobs ready to run. Jobs run one at a time on a single
thread, so the engine and the model manager never see concurrent calls and need no locks of their own.

Three lanes: live work (the final text of a realtime utterance, `lane="live"`) goes first, then previews (partial
text of an utterance still being spoken, `lane="preview"`), then file jobs; a long file job hands the thread to
waiting live work and previews at each batch boundary (`serve_live`, called on the worker thread by the job
itself). Live work still runs on the one worker thread, never beside a file job.

Shutdown (`stop_all`, on SIGTERM): from then on every slot is refused with `ShuttingDown` (503 + Retry-After), and
every job queued or running stops with it (a running one at its next batch boundary), so in-flight requests are
answered within seconds rather than cut off when the process exits.

File work may carry a `Ticket` (`app/worker/progress.py`): its length, model and progress. The Runner starts and ends
its pieces, measures each model's speed from them (`speeds`), and tells where a ticket stands (`standing`: the
work ahead of it, the running one included, and the estimated seconds until it is done).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Future
from typing import Any, Literal, NamedTuple, TypeVar

from app.errors import Cancelled, QueueFull, ShuttingDown
from app.worker.cancel import CancelToken
from app.worker.progress import Speeds, Ticket

T = TypeVar("T")
Item = TypeVar("Item")

_DONE = object()
Lane = Literal["live", "preview", "file"]


class _Task(NamedTuple):
    run: Callable[[], None]
    future: Future[Any]
    cancel: CancelToken | None = None  # None: housekeeping (not a request's work, never counted in the queue)
    ticket: Ticket | None = None


class Standing(NamedTuple):
    """Where a ticket stands: the pieces of work before it (the running one included; 0 once its own work has
    begun) and the estimated seconds until it is done (None until the speeds it depends on are measured)."""

    position: int
    eta_seconds: float | None


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
        self._lock = threading.Lock()
        self._ready = threading.Condition()
        self._live: deque[_Task] = deque()
        self._preview: deque[_Task] = deque()
        self._jobs: deque[_Task] = deque()
        self._current: _Task | None = None  # the file work running now
        self.speeds = Speeds()
        self._stopped = False
        self.live_sessions = 0  # open live sessions: while there are any, file jobs keep their batches small
        self._thread = threading.Thread(target=self._serve, name="inference", daemon=True)
        self._thread.start()
        self._admitted = 0
        self._running = 0
        self.last_activity = time.monotonic()
        self._tokens: dict[Future[Any], CancelToken] = {}  # of the jobs queued or running
        self.stopping = False

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
        self.refuse_if_stopping()
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
        self.refuse_if_stopping()
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

    def shutting_down(self) -> ShuttingDown:
        return ShuttingDown(
            "The server is shutting down: retry in a moment (it, or another instance, will take the request)",
            retry_after_seconds=self.retry_after_seconds,
            code="shutting_down",
        )

    def refuse_if_stopping(self) -> None:
        if self.stopping:
            raise self.shutting_down()

    def stop_all(self) -> None:
        """Shutdown begins: refuse new work, and stop every job queued or running with `ShuttingDown` (a running
        one at its next batch boundary). Event-loop side; the worker thread is left to finish its current batch."""
        with self._lock:
            self.stopping = True
            tokens = list(self._tokens.values())
        for token in tokens:
            token.cancel(self.shutting_down())

    def _watch(self, future: Future[Any], cancel: CancelToken) -> None:
        """Keep the job's token until it ends, so that `stop_all` can reach it."""
        with self._lock:
            self._tokens[future] = cancel
            stopping = self.stopping
        if stopping:
            cancel.cancel(self.shutting_down())

        def forget(_: Future[Any]) -> None:
            with self._lock:
                self._tokens.pop(future, None)

        future.add_done_callback(forget)

    def _wrap(self, fn: Callable[[], T], cancel: CancelToken, ticket: Ticket | None = None) -> Callable[[], T]:
        def job() -> T:
            cancel.raise_if_cancelled()  # the client left while the job was queued
            self._running += 1
            if ticket is not None:
                ticket.begin()
            try:
                return fn()
            finally:
                if ticket is not None:
                    audio, seconds = ticket.end()
                    if ticket.model:
                        self.speeds.observe(ticket.model, audio, seconds)
                self._running -= 1
                self.last_activity = time.monotonic()

        return job

    def _submit(
        self,
        fn: Callable[[], T],
        *,
        lane: Lane = "file",
        cancel: CancelToken | None = None,
        ticket: Ticket | None = None,
    ) -> Future[T]:
        future: Future[T] = Future()

        def task() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn()
            except BaseException as exc:  # handed to the awaiting side, as ThreadPoolExecutor does
                future.set_exception(exc)
            else:
                future.set_result(result)

        with self._ready:
            if self._stopped:
                raise RuntimeError("the runner is shut down")
            lanes = {"live": self._live, "preview": self._preview, "file": self._jobs}
            lanes[lane].append(_Task(task, future, cancel, ticket))
            self._ready.notify()
        return future

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not (self._live or self._preview or self._jobs or self._stopped):
                    self._ready.wait()
                if self._stopped:
                    return
                lane = self._live or self._preview or self._jobs
                task = lane.popleft()
                self._current = task if lane is self._jobs and task.cancel is not None else None
            try:
                task.run()
            finally:
                with self._ready:
                    self._current = None

    def serve_live(self) -> None:
        """Run every waiting live task now. Long jobs call this on the worker thread at their batch boundaries."""
        if threading.current_thread() is not self._thread:
            return
        while True:
            with self._ready:
                if not (self._live or self._preview):
                    return
                task = (self._live or self._preview).popleft()
            task.run()

    @property
    def live_waiting(self) -> int:
        return len(self._live) + len(self._preview)

    @property
    def waiting(self) -> int:
        """Requests' file work waiting for the worker (work already cancelled is not counted)."""
        with self._ready:
            return sum(1 for task in self._jobs if _counted(task))

    def standing(self, ticket: Ticket) -> Standing:
        """Where `ticket` stands now; a ticket not queued (yet) stands behind everything that is."""
        now = time.monotonic()
        with self._ready:
            queued = [task for task in self._jobs if _counted(task)]
            current = self._current
        if ticket.started is not None:
            return Standing(0, ticket.remaining(self.speeds, now))
        # work stopping (its client left, its job was cancelled) ends at its next batch boundary: counted as nothing
        stopping = current is not None and current.cancel is not None and current.cancel.cancelled
        ahead: list[Ticket | None] = [] if current is None else [None if stopping else current.ticket]
        for task in queued:
            if task.ticket is ticket:
                break
            ahead.append(task.ticket)
        estimates = [t.remaining(self.speeds, now) if t is not None else 0.0 for t in [*ahead, ticket]]
        eta = None if any(e is None for e in estimates) else sum(e or 0.0 for e in estimates)
        return Standing(len(ahead), eta)

    async def run(
        self, fn: Callable[[], T], cancel: CancelToken, *, lane: Lane = "file", ticket: Ticket | None = None
    ) -> T:
        """Run `fn` on the worker and wait for it. If the awaiting task is cancelled, the job is told to stop.

        `lane="live"` or `"preview"`: ahead of waiting file jobs (live before previews), and taken at a running file
        job's next batch boundary. `ticket`: the work's place in the queue and its progress."""
        future: Future[T] = self._submit(self._wrap(fn, cancel, ticket), lane=lane, cancel=cancel, ticket=ticket)
        self._watch(future, cancel)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.cancel()
            raise

    def run_internal(self, fn: Callable[[], T]) -> Future[T]:
        """Housekeeping (idle unload) on the worker thread, outside admission, in FIFO order with the jobs."""
        return self._submit(fn)

    async def stream(
        self, produce: Callable[[Callable[[Item], None]], None], cancel: CancelToken, ticket: Ticket | None = None
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

        future = self._submit(self._wrap(job, cancel, ticket), cancel=cancel, ticket=ticket)
        self._watch(future, cancel)
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
        """Stop taking work; waiting tasks are dropped (their futures are cancelled), the running one finishes."""
        with self._ready:
            self._stopped = True
            self._ready.notify_all()
            dropped = [*self._live, *self._preview, *self._jobs]
            self._live.clear()
            self._preview.clear()
            self._jobs.clear()
        for task in dropped:
            task.future.cancel()


def _counted(task: _Task) -> bool:
    """A request's work still wanted (housekeeping and work whose client left are not)."""
    return task.cancel is not None and not task.cancel.cancelled


__all__ = ["Cancelled", "Runner", "Standing"]
