"""Resume on retry (issue 14): a job outlives the request that started it, so that the same request coming back (an
SDK retry after its client-side time-out, Reflector's retry) attaches to it instead of running it again.

A job is keyed by a hash of everything that changes its answer (`request_key`: the route, every form field or body
field, the sha256 of each uploaded file, hashed while the upload streams in). It owns what the request held (the
queue slot, the temp files) until its work has stopped. Its items (a plain answer's one result, a stream's segments
and summary) are kept in memory only while a request follows it, or for RESUME_GRACE_SECONDS after the last one
left; they are never logged. A job nobody follows for the grace is cancelled (it stops at its next batch boundary);
a finished job nobody took is dropped after the grace.

The grace is only for a worker nobody else needs: a job nobody follows is cancelled at once when other work holds a
queue slot (a request admitted while it waits, or one already waiting when its client leaves), so abandoned work
never holds up waiting work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import msgspec

from app.errors import Cancelled
from app.worker.cancel import CancelToken
from app.worker.progress import Ticket

Item = TypeVar("Item")
T = TypeVar("T")


def request_key(route: str, fields: dict[str, list[str]], files: list[tuple[str, str, str]]) -> str:
    """The hash of a request's answer-changing inputs: route, fields (name -> values) and files (field, name, sha256).

    Never logged; only compared."""
    canonical = msgspec.json.encode([route, sorted(fields.items()), sorted(files)])
    return hashlib.sha256(canonical).hexdigest()


async def one_item(work: Awaitable[T]) -> AsyncIterator[T]:
    """A plain answer as a job's only item."""
    yield await work


class SharedJob(Generic[Item]):
    """One running (or finished) job and the requests following it. Event-loop only."""

    def __init__(self, registry: ResumableJobs, key: str, cancel: CancelToken, grace_seconds: float) -> None:
        self._registry = registry
        self.key = key
        self.grace_seconds = grace_seconds
        self.cancel = cancel
        self.items: list[Item] = []
        self.error: BaseException | None = None
        self.done = False
        self.followers = 0
        self.model = ""  # the model doing the work (the x-model header of every request that follows it)
        self.ticket: Ticket | None = None  # its place in the queue (a stream tells it while it waits)
        self._changed = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None

    async def follow(self) -> AsyncGenerator[Item]:
        """Every item from the first (a retry first gets what was already produced), then the rest as they come;
        the job's error at the end. Leaving early starts the grace (when nobody else follows)."""
        self._attach()
        index = 0
        delivered = False
        try:
            while True:
                while index < len(self.items):
                    yield self.items[index]
                    index += 1
                if self.done:
                    break
                changed = self._changed
                await changed.wait()
            if self.error is not None:
                raise self.error
            delivered = True
        finally:
            self._detach(delivered=delivered)

    async def result(self) -> Item:
        """A plain answer: the job's last item."""
        items = [item async for item in self.follow()]
        return items[-1]

    def _push(self, item: Item) -> None:
        self.items.append(item)
        self._notify()

    def _finish(self, error: BaseException | None) -> None:
        self.done = True
        self.error = error
        self._notify()
        if self.followers == 0:
            if isinstance(error, Cancelled):
                self._registry._forget(self)
            else:
                self._start_grace()  # the result waits for its retry

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _attach(self) -> None:
        self.followers += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _detach(self, *, delivered: bool) -> None:
        self.followers -= 1
        if delivered:
            self._registry._forget(self)  # the answer reached a client
        elif self.followers == 0:
            self._start_grace()

    def _start_grace(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.grace_seconds, self._grace_over)
        if not self.done:
            self._registry.yield_to_waiting_work()

    @property
    def unattended(self) -> bool:
        """Still working, and nobody follows it (in its grace, or abandoned and not yet stopped)."""
        return not self.done and self.followers == 0

    def _grace_over(self) -> None:
        self._timer = None
        if self.followers > 0:
            return
        if self.done:
            self._registry._forget(self)
        else:
            self._registry._abandon(self)


class ResumableJobs:
    """Running and recently finished jobs by request key (one per app; in memory only)."""

    def __init__(
        self,
        grace_seconds: float,
        *,
        on_abandoned: Callable[[], None] | None = None,
        admitted: Callable[[], int] = lambda: 0,
    ) -> None:
        """`admitted()`: how many queue slots are held (the Runner's count), shared jobs' included."""
        self.grace_seconds = grace_seconds
        self._on_abandoned = on_abandoned
        self._admitted = admitted
        self._jobs: dict[str, SharedJob[Any]] = {}
        self._working: set[SharedJob[Any]] = set()  # jobs whose work has not stopped: each holds a queue slot
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._jobs)

    def find(self, key: str) -> SharedJob[Any] | None:
        """The job a retried request may attach to (not one already being cancelled)."""
        job = self._jobs.get(key)
        return None if job is None or job.cancel.cancelled else job

    def start(
        self,
        key: str,
        items: AsyncIterator[Item],
        cancel: CancelToken,
        owned: contextlib.ExitStack,
        *,
        grace_seconds: float | None = None,
    ) -> SharedJob[Item]:
        """Run `items` (work watching `cancel`) as the job of `key`; `owned` (queue slot, files) is closed once the
        work has stopped. `grace_seconds`: this job's grace, at most the registry's."""
        grace = self.grace_seconds if grace_seconds is None else min(grace_seconds, self.grace_seconds)
        job: SharedJob[Item] = SharedJob(self, key, cancel, grace)
        self._jobs[key] = job
        self._working.add(job)
        task = asyncio.ensure_future(self._produce(job, items, owned))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _produce(self, job: SharedJob[Item], items: AsyncIterator[Item], owned: contextlib.ExitStack) -> None:
        error: BaseException | None = None
        with owned:
            try:
                async for item in items:
                    job._push(item)
            except asyncio.CancelledError:  # shutdown
                job.cancel.cancel()
                error = Cancelled()
                raise
            except Exception as exc:
                error = exc
            finally:
                self._working.discard(job)
                job._finish(error)

    def _forget(self, job: SharedJob[Any]) -> None:
        if self._jobs.get(job.key) is job:
            del self._jobs[job.key]

    def _abandon(self, job: SharedJob[Any]) -> None:
        """Nobody came back: the work stops at its next batch boundary, and is counted as cancelled."""
        job.cancel.cancel()
        self._forget(job)
        if self._on_abandoned is not None:
            self._on_abandoned()

    def yield_to_waiting_work(self) -> None:
        """When other work holds a queue slot, cancel every job nobody follows (they stop at their next batch
        boundary). Called when a request is admitted and when a job's last follower leaves."""
        unattended = [job for job in self._working if job.unattended]
        if unattended and self._admitted() > len(unattended):
            for job in unattended:
                if self._jobs.get(job.key) is job:  # not already abandoned (a stopping job is still working)
                    if job._timer is not None:
                        job._timer.cancel()
                        job._timer = None
                    self._abandon(job)

    def abandon_all(self) -> None:
        """At shutdown: stop every job nobody waits for."""
        for job in list(self._jobs.values()):
            if job._timer is not None:
                job._timer.cancel()
                job._timer = None
            if not job.done and job.followers == 0:
                self._abandon(job)
            else:
                self._forget(job)
