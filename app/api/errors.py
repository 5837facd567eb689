"""Every error leaves the server in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import structlog
from litestar import Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.api.context import AnyRequest, ClientGone, record_of
from app.errors import AppError

log = structlog.get_logger("app.errors")

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}


def error_body(message: str, status: int, *, param: str | None = None, code: str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": _TYPES.get(status, "server_error"), "param": param, "code": code}}


def _note(request: AnyRequest, kind: str) -> None:
    record = record_of(request.scope)
    if record is not None:
        record.error = kind


def app_error_handler(request: AnyRequest, exc: AppError) -> Response[object]:
    _note(request, type(exc).__name__)
    return Response(exc.body(), status_code=exc.status, headers=exc.headers)


def http_exception_handler(request: AnyRequest, exc: HTTPException) -> Response[object]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        status = 400  # OpenAI answers 400 for bad parameters; never 422
    message = exc.detail or "Request error"
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        details = "; ".join(
            f"{item.get('key', '')}: {item.get('message', '')}" for item in exc.extra if isinstance(item, dict)
        )
        message = f"{message}: {details}" if details else message
    _note(request, type(exc).__name__)
    return Response(error_body(message, status), status_code=status, headers=exc.headers or None)


def client_gone_handler(request: AnyRequest, exc: ClientGone) -> Response[object]:
    """The client hung up and its job was stopped: nobody reads this answer; the log line says 499."""
    _note(request, "ClientGone")
    record = record_of(request.scope)
    if record is not None:
        record.status_override = 499
    return Response(error_body("Client closed the request", 499, code="client_closed_request"), status_code=499)


def internal_error_handler(request: AnyRequest, exc: Exception) -> Response[object]:
    record = record_of(request.scope)
    request_id = record.request_id if record else "unknown"
    _note(request, type(exc).__name__)
    # The traceback goes to the log (no transcript text is ever in an exception), never to the client.
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    body = error_body(f"Internal server error (request id {request_id})", 500, code="internal_error")
    return Response(body, status_code=HTTP_500_INTERNAL_SERVER_ERROR)


EXCEPTION_HANDLERS = {
    AppError: app_error_handler,
    HTTPException: http_exception_handler,
    ClientGone: client_gone_handler,
    Exception: internal_error_handler,
}
