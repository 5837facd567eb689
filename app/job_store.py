"""Jobs a client leaves with the server (POST /v1/jobs), held in memory only, as whisper_api promises (seed 003).

    with store.reserving() as slot:            # QueueFull (too_many_jobs) when MAX_JOBS are held
        ...read and check the upload...
        job = slot.hold(task=..., ticket=..., owned=...)   # held from now on: GET /v1/jobs/{id}
    store.start(job, work)                     # its work, on the event loop (kept until it ends)
    store.finish(job, "succeeded", result=...) # (or failed, with its error) its time to live starts
    store.get(job_id)                          # UnknownJob for an id not held (never was, expired, deleted, restart)

A job's id carries 128 random bits; logs show only `short_id` (never the whole id). A finished job is kept for
JOBS_TTL_SECONDS, restarted whenever it is fetched (unless JOBS_TTL_REFRESH=false), then dropped with its result.
A job's audio and queue slot (`owned`) are released the moment its work ends or it is cancelled, before its status
says so. Event-loop only; the ticket inside is the worker's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Literal

import msgspec

from app.errors import QueueFull, UnknownJob
from app.render.sse import ErrorBody
from app.settings import JobSettings, ResponseFormat
from app.transcript import DiarizedSegment, Task, Transcript
from app.worker.cancel import CancelToken
from app.worker.progress import Ticket

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Outcome = Literal["succeeded", "failed", "cancelled"]
ID_PREFIX = "job_"
ID_BYTES = 16  # 128 random bits
SHORT_ID_CHARS = 6  # what logs show of the random part: 36 bits, never enough to fetch a job


def new_job_id() -> str:
    return ID_PREFIX + secrets.token_urlsafe(ID_BYTES)


def short_id(job_id: str) -> str:
    """The id as logs show it: its prefix and first characters, never the whole id."""
    return job_id[: len(ID_PREFIX) + SHORT_ID_CHARS]


class JobResult(msgspec.Struct, frozen=True):
    """A finished job's one stored transcript; every response format is rendered from it when fetched."""

    transcript: Transcript
    speakers: tuple[DiarizedSegment, ...] | None  # diarized_json's segments; None: the job was not diarized
    processing_seconds: float


class HeldJob:
    """One job: what it was asked, its place in the queue (`ticket`), its outcome and its time to live."""

    def __init__(
        self,
        *,
        task: Task,
        model: str,
        response_format: ResponseFormat,
        diarized: bool,
        ticket: Ticket,
        owned: contextlib.ExitStack,
        clock: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        self.id = new_job_id()
        self.task = task
        self.model = model  # the model asked for; the one that ran once it is chosen (MODEL=auto)
        self.response_format = response_format  # the result's format when the fetch names none
        self.diarized = diarized
        self.ticket = ticket
        self.cancel = CancelToken()
        self._owned = owned  # its queue slot and its audio, until its work stops
        self._clock = clock
        self._wall = wall
        self._created = clock()
        self.created_at = wall()
        self.outcome: Outcome | None = None
        self.finished_at: float | None = None
        self.result: JobResult | None = None
        self.error: ErrorBody | None = None
        self.deadline: float | None = None  # on `clock`: when a finished job is dropped

    @property
    def status(self) -> JobStatus:
        if self.outcome is not None:
            return self.outcome
        return "queued" if self.ticket.started is None else "running"

    @property
    def started_at(self) -> float | None:
        """Wall-clock time its work began on the worker."""
        started = self.ticket.started
        return None if started is None else self.created_at + (started - self._created)

    @property
    def expires_at(self) -> float | None:
        return None if self.deadline is None else self._wall() + (self.deadline - self._clock())

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    def release(self) -> None:
        """Give back its queue slot and delete its audio (once is enough; again is nothing)."""
        self._owned.close()


class Reservation:
    """A MAX_JOBS place taken while an upload is read and checked; `hold` turns it into a held job."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def hold(
        self,
        *,
        task: Task,
        model: str,
        response_format: ResponseFormat,
        diarized: bool,
        ticket: Ticket,
        owned: contextlib.ExitStack,
    ) -> HeldJob:
        store = self._store
        job = HeldJob(
            task=task,
            model=model,
            response_format=response_format,
            diarized=diarized,
            ticket=ticket,
            owned=owned,
            clock=store.clock,
            wall=store.wall,
        )
        store._jobs[job.id] = job
        return job


class JobStore:
    def __init__(
        self,
        settings: JobSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.max_jobs = settings.max_jobs
        self.ttl_seconds = settings.jobs_ttl_seconds
        self.refresh = settings.jobs_ttl_refresh
        self.clock = clock
        self.wall = wall
        self._jobs: dict[str, HeldJob] = {}  # in the order they were submitted
        self._reserved = 0
        self._work: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        self.sweep()
        return len(self._jobs)

    @contextlib.contextmanager
    def reserving(self) -> Iterator[Reservation]:
        """A place for one more job while its upload is read; QueueFull (with Retry-After) when MAX_JOBS are held."""
        self.sweep()
        if len(self._jobs) + self._reserved >= self.max_jobs:
            raise QueueFull(
                f"{len(self._jobs)} jobs are held (MAX_JOBS={self.max_jobs}): fetch or delete finished ones, or retry "
                "later",
                retry_after_seconds=self.retry_after_seconds(),
                code="too_many_jobs",
            )
        self._reserved += 1
        try:
            yield Reservation(self)
        finally:
            self._reserved -= 1

    def retry_after_seconds(self) -> int:
        """When a place frees by itself: the next finished job's expiry; with none finished, one time to live."""
        now = self.clock()
        deadlines = [job.deadline for job in self._jobs.values() if job.deadline is not None]
        wait = min(deadlines) - now if deadlines else self.ttl_seconds
        return max(1, round(wait))

    def get(self, job_id: str, *, fetched: bool = True) -> HeldJob:
        """The job held under `job_id`; fetching a finished one restarts its time to live (JOBS_TTL_REFRESH)."""
        self.sweep()
        job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJob(
                "No such job: it never existed, it expired (results are kept JOBS_TTL_SECONDS after they finish), "
                "it was deleted, or the server restarted since (jobs are held in memory only)",
                about="job_id",
                code="job_not_found",
            )
        if fetched and self.refresh and job.deadline is not None:
            job.deadline = self.clock() + self.ttl_seconds
        return job

    def jobs(self) -> list[HeldJob]:
        """Every job held, newest first."""
        self.sweep()
        return list(reversed(self._jobs.values()))

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a job's work on the event loop, kept until it ends."""
        task = asyncio.ensure_future(work)
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    def finish(
        self, job: HeldJob, outcome: Outcome, *, result: JobResult | None = None, error: ErrorBody | None = None
    ) -> None:
        """The job's work ended (its audio already released). A job cancelled before keeps its outcome."""
        if job.outcome is not None:
            return
        job.outcome = outcome
        job.result = result
        job.error = error
        job.finished_at = self.wall()
        job.deadline = self.clock() + self.ttl_seconds

    def cancel(self, job: HeldJob) -> None:
        """Stop a queued or running job: its work stops at its next batch boundary; its audio goes now."""
        job.cancel.cancel()
        job.release()
        self.finish(job, "cancelled")

    def forget(self, job: HeldJob) -> None:
        self._jobs.pop(job.id, None)

    def sweep(self) -> None:
        """Drop the finished jobs whose time to live is over."""
        now = self.clock()
        for job in [j for j in self._jobs.values() if j.deadline is not None and j.deadline <= now]:
            del self._jobs[job.id]

    def counts(self) -> dict[JobStatus, int]:
        """How many jobs are held in each status."""
        self.sweep()
        counts: dict[JobStatus, int] = {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
        for job in self._jobs.values():
            counts[job.status] += 1
        return counts

    def cancel_all(self) -> None:
        """At shutdown: stop every job still queued or running (held jobs are lost with the process anyway)."""
        for job in self._jobs.values():
            if job.outcome is None:
                job.cancel.cancel()
