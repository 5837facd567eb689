"""Every error leaves the server in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.

`HTTP_ERRORS` is the one table from a domain error (`app.errors`) to its status and OpenAI error type; `describe`
adds the request parameter (the domain's "audio" is the request's audio field: `file` or `audio_file_url`) and the
headers an error needs (Retry-After, WWW-Authenticate).
"""

from __future__ import annotations

import re

import msgspec
import structlog
from litestar import Response
from litestar.exceptions import HTTPException, ValidationException

from app.api.jobs import CLIENT_CLOSED_REQUEST, ClientGone
from app.api.requests import AnyRequest, record_of
from app.errors import (
    AppError,
    InputTooLarge,
    InvalidInput,
    JobUnfinished,
    ModelUnavailable,
    QueueFull,
    RetryLater,
    ShuttingDown,
    SourceFailed,
    SourceNotFound,
    SourceTimeout,
    StorageFull,
    UnknownJob,
    UploadStalled,
)
from app.render.sse import ErrorBody

log = structlog.get_logger("app.errors")


class Unauthorized(AppError):
    """The bearer key is missing or wrong; `challenge` is the WWW-Authenticate value."""

    def __init__(self, message: str, *, code: str, challenge: str) -> None:
        super().__init__(message, code=code)
        self.challenge = challenge


# Most specific first: the first entry the error is an instance of wins.
HTTP_ERRORS: tuple[tuple[type[AppError], int, str], ...] = (
    (InvalidInput, 400, "invalid_request_error"),
    (Unauthorized, 401, "invalid_request_error"),
    (SourceNotFound, 404, "invalid_request_error"),
    (UnknownJob, 404, "invalid_request_error"),
    (UploadStalled, 408, "invalid_request_error"),
    (JobUnfinished, 409, "invalid_request_error"),
    (InputTooLarge, 413, "invalid_request_error"),
    (SourceTimeout, 504, "server_error"),
    (SourceFailed, 502, "server_error"),
    (QueueFull, 503, "server_error"),
    (ShuttingDown, 503, "server_error"),
    # 507 Insufficient Storage (RFC 4918) names the cause, where a 503 would read as "busy" (ADR 47).
    (StorageFull, 507, "server_error"),
    (ModelUnavailable, 503, "server_error"),
)

# Litestar's message for an absent required parameter (`litestar/_kwargs/extractors.py`); it carries no key otherwise
MISSING_PARAMETER = re.compile(r"Missing required \w+ parameter '([^']+)'")
_TYPES_BY_STATUS = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


class HttpError(msgspec.Struct, frozen=True):
    """An error as it leaves the server."""

    status: int
    body: ErrorBody
    headers: dict[str, str]

    def json(self) -> dict[str, ErrorBody]:
        return {"error": self.body}


def error_type(status: int) -> str:
    return _TYPES_BY_STATUS.get(status, "server_error")


def describe(exc: AppError, *, audio_field: str = "file") -> HttpError:
    """Status, OpenAI body and headers of a domain error; `audio_field` names the request's audio input."""
    status, kind = next(((s, t) for cls, s, t in HTTP_ERRORS if isinstance(exc, cls)), (500, "server_error"))
    param = audio_field if exc.about == "audio" else exc.about
    headers: dict[str, str] = {}
    if isinstance(exc, RetryLater):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    if isinstance(exc, UploadStalled):
        headers["Connection"] = "close"  # the rest of the body will never be read
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = exc.challenge
    return HttpError(status, ErrorBody(exc.message, kind, param, exc.code), headers)


def internal_error(request_id: str) -> HttpError:
    body = ErrorBody(f"Internal server error (request id {request_id})", "server_error", None, "internal_error")
    return HttpError(500, body, {})


def _note(request: AnyRequest, kind: str) -> None:
    record = record_of(request.scope)
    if record is not None:
        record.error = kind


def app_error_handler(request: AnyRequest, exc: AppError) -> Response[object]:
    _note(request, type(exc).__name__)
    record = record_of(request.scope)
    error = describe(exc, audio_field=record.audio_field if record else "file")
    return Response(error.json(), status_code=error.status, headers=error.headers)


def http_exception_handler(request: AnyRequest, exc: HTTPException) -> Response[object]:
    status = exc.status_code
    message, param = exc.detail or "Request error", None
    if isinstance(exc, ValidationException):
        status = 400  # OpenAI answers 400 for bad parameters; never 422
        message, param = refused_parameter(exc)
    _note(request, type(exc).__name__)
    body = {"error": ErrorBody(message, error_type(status), param, None)}
    return Response(body, status_code=status, headers=exc.headers or None)


def refused_parameter(exc: ValidationException) -> tuple[str, str | None]:
    """Litestar's refusal of a typed parameter as our message and `param`: each refused key with why (the first is
    the param), or the missing one. Its own message would repeat the request's URL."""
    items = [item for item in exc.extra if isinstance(item, dict)] if isinstance(exc.extra, list) else []
    if items:
        why = "; ".join(f"Invalid value for '{item.get('key', '')}': {item.get('message', '')}" for item in items)
        return why, items[0].get("key")
    missing = MISSING_PARAMETER.match(exc.detail or "")
    if missing:
        return f"Missing required parameter: '{missing.group(1)}'", missing.group(1)
    return exc.detail or "Invalid request", None


def client_gone_handler(request: AnyRequest, exc: ClientGone) -> Response[object]:
    """The client hung up and its job was stopped: nobody reads this answer (the job helper recorded the 499)."""
    _note(request, "ClientGone")
    body = {"error": ErrorBody("Client closed the request", "server_error", None, "client_closed_request")}
    return Response(body, status_code=CLIENT_CLOSED_REQUEST)


def internal_error_handler(request: AnyRequest, exc: Exception) -> Response[object]:
    record = record_of(request.scope)
    _note(request, type(exc).__name__)
    # The traceback goes to the log (no transcript text is ever in an exception), never to the client.
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    error = internal_error(record.request_id if record else "unknown")
    return Response(error.json(), status_code=error.status)


EXCEPTION_HANDLERS = {
    AppError: app_error_handler,
    HTTPException: http_exception_handler,
    ClientGone: client_gone_handler,
    Exception: internal_error_handler,
}
