"""Per-request plumbing shared by the middleware and the routes: the log record, the services, client hang-ups."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import msgspec
from litestar import Request
from litestar.types import Scope

from app.errors import Cancelled
from app.worker.cancel import CancelToken

if TYPE_CHECKING:
    from app.api.deps import Services

STATE_KEY = "stt_request"
AnyRequest = Request[Any, Any, Any]
T = TypeVar("T")


class RequestRecord(msgspec.Struct, kw_only=True):
    request_id: str
    route: str
    audio_seconds: float | None = None
    processing_seconds: float | None = None
    model: str | None = None
    audio_field: str = "file"  # the request field errors about the audio name: `file`, or `audio_file_url`
    status_override: int | None = None  # 499 when the client went away
    error: str | None = None  # error type only, never text of the request


def record_of(scope: Scope | dict[str, Any]) -> RequestRecord | None:
    state = scope.get("state") or {}
    record = state.get(STATE_KEY)
    return record if isinstance(record, RequestRecord) else None


def services_of(request: AnyRequest) -> Services:
    return cast("Services", request.app.state.services)


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def until_disconnect(request: AnyRequest, work: Awaitable[T], cancel: CancelToken | None) -> T:
    """Await `work`; if the client hangs up first, stop it, wait for it to stop, and raise ClientGone.

    With a `cancel` token (a job on the worker), the token is set and the job stops at its next batch boundary: only
    then may its files go. Without one (plain async work such as a download), the task itself is cancelled.
    The request body must have been read already (the watcher consumes `receive()`).
    """
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        if cancel is not None:
            cancel.cancel()
        else:
            task.cancel()
        with contextlib.suppress(Cancelled, asyncio.CancelledError, Exception):
            await task
        raise ClientGone
    return task.result()
