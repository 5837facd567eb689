"""What the middleware and the routes share about one request: its log record and the app's services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import msgspec
from litestar import Request
from litestar.types import Scope

if TYPE_CHECKING:
    from app.api.deps import Services

STATE_KEY = "stt_request"
AnyRequest = Request[Any, Any, Any]


class RequestRecord(msgspec.Struct, kw_only=True):
    """The request's log line and metrics; written by the middleware, the error handlers and `RequestJob`."""

    request_id: str
    route: str
    audio_seconds: float | None = None
    processing_seconds: float | None = None
    model: str | None = None
    detected_language: str | None = None  # MODEL=auto: the language detected to choose the model ("none": silence)
    detection_seconds: float | None = None  # None: no detection ran
    status_override: int | None = None  # 499 when the client went away; an error's status after a stream started
    error: str | None = None  # error type only, never text of the request
    resumed: bool = False  # a retried request that attached to its running (or finished) job
    audio_field: str = "file"  # the request field errors about the audio name: `file`, or `audio_file_url`
    job: str | None = None  # the job it submits or names, by its short id (never the whole id)


def record_of(scope: Scope | dict[str, Any]) -> RequestRecord | None:
    state = scope.get("state") or {}
    record = state.get(STATE_KEY)
    return record if isinstance(record, RequestRecord) else None


def services_of(request: AnyRequest) -> Services:
    return cast("Services", request.app.state.services)
