"""Per-request bookkeeping shared by the middleware and the routes: request id, audio seconds, final status."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.types import Scope

STATE_KEY = "stt_request"
AnyRequest = Request[Any, Any, Any]


class RequestRecord(msgspec.Struct, kw_only=True):
    request_id: str
    route: str
    audio_seconds: float | None = None
    processing_seconds: float | None = None
    model: str | None = None
    status_override: int | None = None  # 499 when the client went away
    error: str | None = None  # error type only, never text of the request


def record_of(scope: Scope | dict[str, Any]) -> RequestRecord | None:
    state = scope.get("state") or {}
    record = state.get(STATE_KEY)
    return record if isinstance(record, RequestRecord) else None
