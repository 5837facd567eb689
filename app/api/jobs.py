"""Running a request's work: the one place that holds its queue slot, cancels it on hang-up and records its outcome.

    with RequestJob(request) as job:                    # an upload slot while the body streams in (MAX_UPLOADS)
        form = await read_form(request)
        job.admit()                                     # then a queue slot (QueueFull when none is left)
        job.uses_model(name)
        result = await job.run(services.transcriber.transcribe(path, plan, job.cancel))
        job.finished(audio_seconds, processing_seconds)

`run` stops the work when the client hangs up (a worker job at its next batch boundary, through `job.cancel`; plain
async work such as a download by cancelling its task), waits until it has stopped (so its files may go), records 499
once (log line and metrics) and raises `ClientGone`.

Work that a retry may resume (issue 14) is shared instead: `resume(key)` finds the job a retried request attaches to;
`share(key, items, cancel)` hands the slot and files to a new job (`app/api/resume.py`) that outlives a hang-up by
RESUME_GRACE_SECONDS. A request following a shared job still logs 499 when it hangs up, but cancels nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable
from types import TracebackType
from typing import Any, TypeVar

from app.api.requests import AnyRequest, RequestRecord, record_of, services_of
from app.api.resume import SharedJob
from app.errors import Cancelled, InvalidInput, UploadStalled
from app.transcription.request import Plan
from app.worker.cancel import CancelToken

T = TypeVar("T")
Item = TypeVar("Item")
CLIENT_CLOSED_REQUEST = 499
MODEL_HEADER = "x-model"  # the response header naming the model(s) that transcribed the answer
RESUME_GRACE_HEADER = "X-Resume-Grace"


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


class RequestJob:
    def __init__(self, request: AnyRequest) -> None:
        self.request = request
        self.services = services_of(request)
        self.cancel = CancelToken()
        self.resources = contextlib.ExitStack()  # the request's temp files and, once admitted, its queue slot
        self._upload = contextlib.ExitStack()  # the upload slot, until admitted
        self._admitted = False
        self._record = record_of(request.scope) or RequestRecord(request_id="unknown", route="")
        self._gone = False
        self._shared = False  # follows a shared job: a hang-up leaves it to its grace
        self._grace: float | None = None  # X-Resume-Grace, when the client sent one

    def __enter__(self) -> RequestJob:
        self._upload.enter_context(self.services.runner.upload_slot())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._upload.close()
        self.resources.close()
        if isinstance(exc, UploadStalled):
            self.services.metrics.upload_timed_out()

    def admit(self) -> None:
        """The body is read: give back the upload slot and take a queue slot (QueueFull when none is left)."""
        if not self._admitted:
            self._upload.close()
            self.resources.enter_context(self.services.runner.admission())
            self._admitted = True
            self.services.resumable.yield_to_waiting_work()  # a hung-up job in its grace must not hold this one

    def hand_over(self) -> contextlib.ExitStack:
        """The slot and files, for a response that outlives the handler (a stream), which must close them."""
        return self.resources.pop_all()

    def resume(self, key: str) -> SharedJob[Any] | None:
        """The running (or just finished) job of this same request, if one waits for its retry; counted as resumed."""
        self._grace = self._resume_grace()  # a bad header is refused before any work is made
        shared = self.services.resumable.find(key)
        if shared is not None:
            self._upload.close()  # the body is read; the shared job already holds a queue slot
            self._shared = True
            self._record.resumed = True
            self.services.metrics.resumed()
        return shared

    def share(self, key: str, items: AsyncIterator[Item], cancel: CancelToken, *, model: str) -> SharedJob[Item]:
        """Run `items` (watching `cancel`) as a job a retry may resume; it takes over the slot and the files.

        Call `resume(key)` first. A client that never retries (the page at `/`, whose Cancel is deliberate) sends
        `X-Resume-Grace: 0`: its hang-up cancels at once. The header can only shorten RESUME_GRACE_SECONDS."""
        self._shared = True
        shared = self.services.resumable.start(key, items, cancel, self.hand_over(), grace_seconds=self._grace)
        shared.model = model
        return shared

    def _resume_grace(self) -> float | None:
        raw = self.request.headers.get(RESUME_GRACE_HEADER)
        if raw is None:
            return None
        try:
            seconds = float(raw)
        except ValueError:
            seconds = -1.0
        if not math.isfinite(seconds) or seconds < 0:
            raise InvalidInput(f"{RESUME_GRACE_HEADER} must be a number of seconds >= 0", about=RESUME_GRACE_HEADER)
        return seconds

    @property
    def request_id(self) -> str:
        return self._record.request_id

    def audio_from_url(self) -> None:
        """Errors about this request's audio name `audio_file_url`."""
        self.audio_named("audio_file_url")

    def audio_named(self, field: str) -> None:
        """Errors about this request's audio name `field`."""
        self._record.audio_field = field

    def uses_model(self, name: str) -> None:
        self._record.model = name

    def routed(self, plan: Plan) -> Plan:
        """`plan` once `Transcriber.route` chose its model: the log line names it; a detection is logged and
        counted."""
        self._record.model = plan.model
        if plan.detection is not None:
            self._record.detected_language = plan.detection.language or "none"
            self._record.detection_seconds = plan.detection.seconds
            self.services.metrics.language_detected(plan.detection.language, plan.detection.seconds)
        return plan

    def finished(self, audio_seconds: float | None, processing_seconds: float) -> None:
        self._record.audio_seconds = audio_seconds
        self._record.processing_seconds = processing_seconds

    def failed(self, error: Exception, status: int) -> None:
        """An error after the response started (a stream): the log line says what the client was told."""
        self._record.error = type(error).__name__
        self._record.status_override = status

    def hung_up(self) -> None:
        """The client went away: stop the work, log 499 and count the cancellation (once). A shared job is left to
        its grace (it counts its own cancellation if nobody comes back)."""
        self.cancel.cancel()
        if not self._gone:
            self._gone = True
            self._record.status_override = CLIENT_CLOSED_REQUEST
            if not self._shared:
                self.services.cancelled()

    async def run(self, work: Awaitable[T], *, on_worker: bool = True) -> T:
        """Await `work`; if the client hangs up first, stop it, wait for it to stop, and raise ClientGone.

        `on_worker`: the work is a Runner job watching `self.cancel` (it stops at its next batch boundary, and only
        then may its files go); otherwise it is plain async work whose task is cancelled. The request body must have
        been read already (the watcher consumes `receive()`).
        """
        task = asyncio.ensure_future(work)
        watcher = asyncio.ensure_future(self._disconnect())
        try:
            await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
        if not task.done():
            self.hung_up()
            if not on_worker:
                task.cancel()
            with contextlib.suppress(Cancelled, asyncio.CancelledError, Exception):
                await task
            raise ClientGone
        return task.result()

    async def _disconnect(self) -> None:
        while True:
            message = await self.request.receive()
            if message["type"] == "http.disconnect":
                return
