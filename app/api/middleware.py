"""ASGI middleware: request id, auth (the API key as a Bearer token or as an HTTP Basic password), and one log
line per request (with metrics)."""

from __future__ import annotations

import base64
import binascii
import hmac
import time
import uuid
from typing import TYPE_CHECKING, Any, cast

import msgspec
import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import Unauthorized, describe
from app.api.requests import STATE_KEY, RequestRecord

if TYPE_CHECKING:
    from app.api.metrics import Metrics

log = structlog.get_logger("app.request")

# Paths anyone may open: the page, its assets, the API docs, health, metrics and the version Bazarr's Test Connection
# button reads (no content in any of them).
PUBLIC_PREFIXES = ("/static/", "/docs", "/schema")
PUBLIC_PATHS = frozenset({"/", "/health", "/metrics", "/status", "/favicon.ico", "/ca.pem"})  # a CA is public
JOB_PREFIX = "/v1/jobs/"


def _route_label(path: str) -> str:
    """A low-cardinality name for logs and metrics (no query strings, no ids: a job's id is its only key)."""
    if path.startswith("/static/"):
        return "/static"
    if path.startswith(("/docs", "/schema")):
        return "/docs"
    if path.startswith(JOB_PREFIX):
        _, _, rest = path.removeprefix(JOB_PREFIX).partition("/")
        return JOB_PREFIX + "{id}" + ("/" + rest if rest else "")
    return path


async def _send_error(send: Send, denied: Unauthorized) -> None:
    error = describe(denied)
    body = msgspec.json.encode(error.json())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    start: Any = {"type": "http.response.start", "status": error.status, "headers": headers}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)


BROWSER_KEY_PROTOCOL = "openai-insecure-api-key."  # how OpenAI's JS SDK passes a key on a browser WebSocket


def _authorized(scope: Scope, api_key: str) -> Unauthorized | None:
    header = ""
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            header = value.decode("latin-1")
            break
    if not header and str(scope["type"]) == "websocket":  # browsers cannot set headers: the key comes as a subprotocol
        for protocol in cast("list[str]", scope.get("subprotocols") or []):
            if protocol.startswith(BROWSER_KEY_PROTOCOL):
                header = "Bearer " + protocol.removeprefix(BROWSER_KEY_PROTOCOL)
                break
    scheme, _, token = header.partition(" ")
    # Only the Bearer challenge: a Basic one would make browsers (the page at /) pop up a login dialog.
    challenge = 'Bearer realm="stt-appliance"'
    if not header:
        return Unauthorized(
            "Missing API key: send 'Authorization: Bearer <API_KEY>' (or HTTP Basic with the key as the password)",
            code="missing_api_key",
            challenge=challenge,
        )
    sent = _basic_password(token) if scheme.lower() == "basic" else token if scheme.lower() == "bearer" else None
    if sent is None or not hmac.compare_digest(sent.strip().encode(), api_key.encode()):
        return Unauthorized(
            "Incorrect API key provided", code="invalid_api_key", challenge=challenge + ', error="invalid_token"'
        )
    return None


def _basic_password(credentials: str) -> str | None:
    """The password of HTTP Basic credentials (any user name): what `requests` sends for a URL such as
    http://bazarr:KEY@nas:8000 (Bazarr's whisperai provider has no key setting of its own)."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon else None


class RequestMiddleware:
    """Outermost layer: assigns the request id, enforces auth, logs the request when its response is complete."""

    def __init__(self, app: ASGIApp, *, api_key: str, metrics: Metrics | None) -> None:
        self.app = app
        self.api_key = api_key
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if str(scope["type"]) == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        request_id = uuid.uuid4().hex[:12]
        record = RequestRecord(request_id=request_id, route=_route_label(path))
        scope.setdefault("state", {})[STATE_KEY] = record  # type: ignore[typeddict-unknown-key]
        status = 500
        started = time.monotonic()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
                denied = (
                    None
                    if (public or not self.api_key or str(scope.get("method", "")) == "OPTIONS")
                    else _authorized(scope, self.api_key)
                )
                if denied is not None:
                    record.error = "unauthorized"
                    await _send_error(send_wrapper, denied)
                else:
                    await self.app(scope, receive, send_wrapper)
            finally:
                method = str(scope.get("method", ""))
                self._log(record, record.status_override or status, time.monotonic() - started, method)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket is refused before its handshake when the key is missing or wrong (401 with OpenAI's error
        body where the server can send one, else a close that the client sees as a 403); the route logs sessions."""
        request_id = uuid.uuid4().hex[:12]
        denied = _authorized(scope, self.api_key) if self.api_key else None
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            if denied is None:
                await self.app(scope, receive, send)
                return
            log.info("request", route=_route_label(scope["path"]), status=401, error="unauthorized")
            if self.metrics is not None:
                self.metrics.observe_request(_route_label(scope["path"]), 401)
            if "websocket.http.response" in (scope.get("extensions") or {}):
                error = describe(denied)
                body = msgspec.json.encode(error.json())
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
                start: Any = {"type": "websocket.http.response.start", "status": error.status, "headers": headers}
                await send(start)
                end: Any = {"type": "websocket.http.response.body", "body": body}
                await send(end)
            else:
                close: Any = {"type": "websocket.close", "code": 1008}
                await send(close)

    def _log(self, record: RequestRecord, status: int, seconds: float, method: str) -> None:
        if record.route in ("/health", "/metrics", "/static", "/favicon.ico"):
            if self.metrics is not None:
                self.metrics.observe_request(record.route, status)
            return
        rtf = None
        if record.audio_seconds and record.processing_seconds is not None:
            rtf = round(record.processing_seconds / record.audio_seconds, 4)
        fields = {
            "method": method,
            "route": record.route,
            "status": status,
            "seconds": round(seconds, 3),
            "audio_seconds": None if record.audio_seconds is None else round(record.audio_seconds, 2),
            "processing_seconds": None if record.processing_seconds is None else round(record.processing_seconds, 3),
            "rtf": rtf,
            "model": record.model,
            "detected_language": record.detected_language,
            "detection_seconds": None if record.detection_seconds is None else round(record.detection_seconds, 3),
            "error": record.error,
            "resumed": True if record.resumed else None,
            "job": record.job,
        }
        log.info("request", **{k: v for k, v in fields.items() if v is not None})
        if self.metrics is not None:
            self.metrics.observe_request(
                record.route, status, record.audio_seconds or 0.0, record.processing_seconds or 0.0
            )
