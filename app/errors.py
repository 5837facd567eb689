"""Errors the domain raises, each carrying the HTTP status and OpenAI error fields it maps to.

The API layer renders every `AppError` as `{"error": {"message", "type", "param", "code"}}`; nothing else in the
app needs to know about HTTP.
"""

from __future__ import annotations


class AppError(Exception):
    status: int = 500
    type: str = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(AppError):
    """400: a parameter or the audio itself is not acceptable."""

    status = 400
    type = "invalid_request_error"


class Unauthorized(AppError):
    status = 401
    type = "invalid_request_error"


class NotFound(AppError):
    status = 404
    type = "invalid_request_error"


class PayloadTooLarge(AppError):
    status = 413
    type = "invalid_request_error"


class UpstreamError(AppError):
    """502: a source we fetch from (an audio URL) failed."""

    status = 502
    type = "server_error"


class ServerBusy(AppError):
    """503: the queue is full; the client should retry later."""

    status = 503
    type = "server_error"


class ModelUnavailable(AppError):
    """503: the model's weights are missing and cannot be fetched; the message says what to do."""

    status = 503
    type = "server_error"


class Cancelled(Exception):
    """The client went away; the job stopped at a batch boundary."""
