"""Errors the domain raises: what went wrong, which input it is about (in domain words), and a short code.

Nothing here knows HTTP: `app/api/errors.py` holds the one table that maps each kind to a status, OpenAI's error
`type`, the request parameter and headers. `about` names the input in the domain's words ("audio", "model",
"language", "text", "source_language", ...); the API layer turns "audio" into the request's field (`file` for an
upload, `audio_file_url` for a URL).
"""

from __future__ import annotations


class AppError(Exception):
    def __init__(self, message: str, *, about: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.about = about
        self.code = code


class InvalidInput(AppError):
    """A parameter or the audio itself is not acceptable."""


class InputTooLarge(AppError):
    """An upload, a fetched file or a body is over its limit."""


class UploadStalled(AppError):
    """The request body made no progress for too long (a stalled or vanished client)."""


class SourceNotFound(AppError):
    """The audio source says there is no such file."""


class SourceFailed(AppError):
    """A source we fetch from (an audio URL) failed."""


class SourceTimeout(SourceFailed):
    """The audio source did not answer (or finish sending) in time."""


class RetryLater(AppError):
    """The server cannot take this now, but may soon: worth retrying after `retry_after_seconds`."""

    def __init__(self, message: str, *, retry_after_seconds: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_seconds = retry_after_seconds


class QueueFull(RetryLater):
    """Every queue slot is taken."""


class StorageFull(RetryLater):
    """The disk holding request files is full (the files of requests in progress go when they end)."""


class ShuttingDown(RetryLater):
    """The server is stopping: work in progress is stopped, nothing new is taken (another instance, or this one
    restarted, will)."""


class UnknownJob(AppError):
    """No job is held under that id: it never existed, it expired or was deleted, or the server restarted."""


class JobUnfinished(AppError):
    """A job's result was asked for while it has none: it is still queued or running, it failed, or was cancelled."""


class ModelUnavailable(AppError):
    """A model's weights are missing and cannot be fetched (or do not load); the message says what to do."""


class Cancelled(Exception):
    """The client went away; the job stopped at a batch boundary."""
