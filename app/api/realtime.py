"""WebSocket /v1/realtime?intent=transcription: OpenAI's Realtime transcription protocol over a `LiveSession`.

Auth happens before the handshake (`app/api/middleware.py`: a bearer header, or the browser subprotocol
`openai-insecure-api-key.<key>`). A bad client event gets an `error` event in OpenAI's shape and the socket stays
open. Limits: REALTIME_MAX_SESSIONS at once (more get an error event and close 1013), REALTIME_MAX_SESSION_S in all,
a prompt of 64 KB (as the upload form's); a silent session stays open while its socket answers pings (one that
stops is closed within REALTIME_IDLE_TIMEOUT_S). One log line per session, with no text.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
import time
import uuid
from typing import Any, cast

import msgspec
import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from app.api import realtime_wire as wire
from app.api.deps import Services
from app.api.errors import describe
from app.api.forms import MAX_FIELD_BYTES
from app.api.params import MAX_KEYWORD_CHARS, MAX_KEYWORDS
from app.errors import AppError, InvalidInput
from app.transcription.live import (
    Cleared,
    Committed,
    Completed,
    Failed,
    LiveConfig,
    LiveEvent,
    LiveSession,
    Partial,
    SpeechStarted,
    SpeechStopped,
    TurnDetection,
)

log = structlog.get_logger("app.realtime")
ROUTE = "/v1/realtime"
SUBPROTOCOL = "realtime"  # what we answer when a client (OpenAI's JS SDK) offers it
DRAIN_SECONDS = 10.0  # on a server-side close, how long committed utterances may still take
CLOSE_TRY_AGAIN_LATER = 1013
CLOSED_BY_CLIENT = (1000, 1001)  # the client's close frame said so (normal closure, going away)
CLOSE_POLICY = 1008


class SessionRequest(msgspec.Struct, kw_only=True):
    """What the client asked for so far (merged from every update), as the wire shows it back."""

    model: str
    language: str | None = None
    prompt: str | None = None
    languages: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    delay: wire.Delay | None = None
    format_type: str = "audio/pcm"
    rate: int = 24000
    turn_detection: TurnDetection | None = msgspec.field(default_factory=TurnDetection)


def _error(
    message: str, *, code: str | None, param: str | None = None, about_event: str | None = None, kind: str = ""
) -> wire.ErrorEvent:
    return wire.ErrorEvent(wire.RealtimeErrorBody(message, kind or "invalid_request_error", param, code, about_event))


def _validation_error(text: str, about_event: str | None) -> wire.ErrorEvent:
    """msgspec's "Expected `str`, got `int` - at `$.session.type`" or "Object missing required field `audio`"."""
    message, _, where = text.rpartition(" - at ")
    path = where.strip("`").removeprefix("$").removeprefix(".")
    missing = re.search(r"missing required field `([^`]+)`", text)
    if missing is not None:
        field = f"{path}.{missing.group(1)}" if message else missing.group(1)
        return _error(message or text, code="missing_required_parameter", param=field, about_event=about_event)
    return _error(message or text, code="invalid_value", param=path or None, about_event=about_event)


def _app_error(exc: AppError, about_event: str | None) -> wire.ErrorEvent:
    body = describe(exc, audio_field="audio").body
    return wire.ErrorEvent(wire.RealtimeErrorBody(body.message, body.type, body.param, body.code, about_event))


def _merge(current: SessionRequest, event: wire.SessionUpdate | wire.TranscriptionSessionUpdate) -> SessionRequest:
    """The request after an update: fields the client left out stay as they were."""
    updated = msgspec.structs.replace(current)
    transcription: wire.TranscriptionParams | msgspec.UnsetType | None = msgspec.UNSET
    turn: wire.TurnDetectionParams | msgspec.UnsetType | None = msgspec.UNSET
    if isinstance(event, wire.SessionUpdate):
        session = event.session
        if not isinstance(session.type, msgspec.UnsetType) and session.type != "transcription":
            raise InvalidInput(
                f"Invalid session type '{session.type}': this server only has 'transcription' sessions",
                about="session.type",
                code="invalid_value",
            )
        audio_input = session.audio.input if not isinstance(session.audio, msgspec.UnsetType) else msgspec.UNSET
        if not isinstance(audio_input, msgspec.UnsetType):
            if not isinstance(audio_input.format, msgspec.UnsetType):
                updated.format_type = audio_input.format.type
                updated.rate = audio_input.format.rate
            transcription = audio_input.transcription
            turn = audio_input.turn_detection
    else:
        beta = event.session
        if not isinstance(beta.input_audio_format, msgspec.UnsetType):
            updated.format_type = "audio/pcm" if beta.input_audio_format == "pcm16" else beta.input_audio_format
            updated.rate = 24000
        transcription = beta.input_audio_transcription
        turn = beta.turn_detection
    if isinstance(transcription, wire.TranscriptionParams):
        if not isinstance(transcription.model, msgspec.UnsetType):
            updated.model = transcription.model or ""
        if not isinstance(transcription.language, msgspec.UnsetType):
            updated.language = transcription.language
        if not isinstance(transcription.prompt, msgspec.UnsetType):
            if transcription.prompt is not None and len(transcription.prompt.encode()) > MAX_FIELD_BYTES:
                raise InvalidInput(
                    f"The transcription prompt is longer than {MAX_FIELD_BYTES // 1024} KB",
                    about="audio.input.transcription.prompt"
                    if isinstance(event, wire.SessionUpdate)
                    else "input_audio_transcription.prompt",
                    code="string_above_max_length",
                )
            updated.prompt = transcription.prompt
        if not isinstance(transcription.languages, msgspec.UnsetType):
            updated.languages = tuple(transcription.languages)
        if not isinstance(transcription.keywords, msgspec.UnsetType):
            keywords = tuple(dict.fromkeys(k.strip() for k in transcription.keywords if k.strip()))
            if len(keywords) > MAX_KEYWORDS or any(len(k) > MAX_KEYWORD_CHARS for k in keywords):
                raise InvalidInput(
                    f"Send at most {MAX_KEYWORDS} keywords of at most {MAX_KEYWORD_CHARS} characters",
                    about="audio.input.transcription.keywords",
                    code="invalid_value",
                )
            updated.keywords = keywords
        if not isinstance(transcription.delay, msgspec.UnsetType):
            updated.delay = transcription.delay
    if turn is None:
        updated.turn_detection = None
    elif isinstance(turn, wire.TurnDetectionParams):
        if turn.type != "server_vad":
            raise InvalidInput(
                f"Invalid turn_detection type '{turn.type}': this server has 'server_vad' (or null)",
                about="audio.input.turn_detection.type",
                code="invalid_value",
            )
        base = updated.turn_detection or TurnDetection()
        updated.turn_detection = TurnDetection(
            threshold=base.threshold if isinstance(turn.threshold, msgspec.UnsetType) else turn.threshold,
            prefix_padding_ms=base.prefix_padding_ms
            if isinstance(turn.prefix_padding_ms, msgspec.UnsetType)
            else turn.prefix_padding_ms,
            silence_duration_ms=base.silence_duration_ms
            if isinstance(turn.silence_duration_ms, msgspec.UnsetType)
            else turn.silence_duration_ms,
        )
    if updated.format_type != "audio/pcm":
        raise InvalidInput(
            f"Unsupported audio format '{updated.format_type}': send 'audio/pcm' (PCM16 little-endian mono)",
            about="audio.input.format.type",
            code="invalid_value",
        )
    return updated


def _state(session_id: str, request: SessionRequest, config: LiveConfig) -> wire.SessionState:
    turn = config.turn_detection
    return wire.SessionState(
        id=session_id,
        audio=wire.AudioState(
            wire.AudioInputState(
                format=wire.AudioFormat(request.format_type, request.rate),
                transcription=wire.TranscriptionState(
                    config.plan.model,
                    config.plan.decoding.language,
                    config.plan.decoding.prompt,
                    languages=list(request.languages) if request.languages else msgspec.UNSET,
                    keywords=list(config.plan.decoding.keywords) if config.plan.decoding.keywords else msgspec.UNSET,
                    delay=request.delay or msgspec.UNSET,
                ),
                turn_detection=None
                if turn is None
                else wire.TurnDetectionState(turn.threshold, turn.prefix_padding_ms, turn.silence_duration_ms),
            )
        ),
    )


def _beta_state(state: wire.SessionState) -> wire.BetaSessionState:
    audio = state.audio.input
    return wire.BetaSessionState(
        id=state.id,
        input_audio_format="pcm16",
        input_audio_transcription=audio.transcription,
        turn_detection=audio.turn_detection,
    )


class _Connection:
    """One socket: its outbox, its live session and its figures."""

    def __init__(self, socket: WebSocket[Any, Any, Any], services: Services) -> None:
        self.socket = socket
        self.services = services
        self.settings = services.settings.realtime
        self.session_id = "sess_" + uuid.uuid4().hex[:20]
        self.outbox: asyncio.Queue[wire.ServerEvent | None] = asyncio.Queue()
        self.started_at: dict[str, float] = {}
        self.stopped_at: dict[str, float] = {}
        self.request = SessionRequest(model=services.settings.engines.model)
        self.config = services.live.config(
            model=None, language=None, prompt=None, turn_detection=TurnDetection(), input_rate=24000
        )
        self.live = LiveSession(services.live, self.config, self.emit)
        self.outcome = "closed_by_client"

    def send(self, event: wire.ServerEvent) -> None:
        self.outbox.put_nowait(event)

    def emit(self, event: LiveEvent) -> None:
        """A domain event -> its wire event, with the live latency figures on the way."""
        now = time.monotonic()
        metrics = self.services.metrics
        match event:
            case SpeechStarted(item_id, start_ms):
                self.started_at[item_id] = now
                self.send(wire.SpeechStartedEvent(start_ms, item_id))
            case SpeechStopped(item_id, end_ms):
                self.stopped_at[item_id] = now
                self.send(wire.SpeechStoppedEvent(end_ms, item_id))
            case Committed(item_id, previous):
                self.stopped_at.setdefault(item_id, now)
                self.send(wire.CommittedEvent(item_id, previous))
            case Cleared():
                self.send(wire.ClearedEvent())
            case Partial(item_id, delta):
                started = self.started_at.pop(item_id, None)
                if started is not None:
                    metrics.observe_live_first_partial(now - started)
                self.send(wire.TranscriptionDeltaEvent(item_id, delta))
            case Completed(item_id, transcript, seconds):
                self.started_at.pop(item_id, None)
                stopped = self.stopped_at.pop(item_id, None)
                if stopped is not None:
                    metrics.observe_live_latency(now - stopped)
                self.send(wire.TranscriptionCompletedEvent(item_id, transcript, wire.DurationUsage(round(seconds, 3))))
            case Failed(item_id, error):
                self.started_at.pop(item_id, None)
                self.stopped_at.pop(item_id, None)
                self.send(wire.TranscriptionFailedEvent(item_id, describe(error, audio_field="audio").body))

    async def sender(self) -> None:
        while (event := await self.outbox.get()) is not None:
            await self.socket.send_text(wire.encode_event(event))

    async def handle(self, raw: str | bytes) -> None:
        try:
            data = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            self.send(_error("The client event is not valid JSON", code="invalid_json"))
            return
        if not isinstance(data, dict):
            self.send(_error("A client event must be a JSON object", code="invalid_value"))
            return
        about = data.get("event_id") if isinstance(data.get("event_id"), str) else None
        kind = data.get("type")
        if kind not in wire.CLIENT_EVENT_TYPES:
            message = f"Invalid value: '{kind}'. Supported values are: {', '.join(wire.CLIENT_EVENT_TYPES)}."
            self.send(_error(message, code="invalid_value", param="type", about_event=about))
            return
        try:
            event = msgspec.convert(data, wire.ClientEvent)
        except msgspec.ValidationError as exc:
            self.send(_validation_error(str(exc), about))
            return
        try:
            await self._apply(event)
        except AppError as exc:
            self.send(_app_error(exc, about))

    async def _apply(self, event: wire.ClientEvent) -> None:
        match event:
            case wire.AudioAppend(audio=audio):
                try:
                    pcm = base64.b64decode(audio, validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidInput(
                        "input_audio_buffer.append: 'audio' must be base64 PCM16", about="audio", code="invalid_value"
                    ) from None
                await self.live.append(pcm)
            case wire.AudioCommit():
                self.live.commit()
            case wire.AudioClear():
                self.live.clear()
            case wire.SessionUpdate() | wire.TranscriptionSessionUpdate():
                request = _merge(self.request, event)
                config = self.services.live.config(
                    model=request.model,
                    language=request.language,
                    prompt=request.prompt,
                    turn_detection=request.turn_detection,
                    input_rate=request.rate,
                    keywords=request.keywords,
                    languages=request.languages,
                )
                self.request, self.config = request, config
                self.live.reconfigure(config)
                state = _state(self.session_id, request, config)
                if isinstance(event, wire.SessionUpdate):
                    self.send(wire.SessionUpdated(state))
                else:
                    self.send(wire.TranscriptionSessionUpdated(_beta_state(state)))

    async def receive_loop(self) -> None:
        """Client events until the client closes, the socket dies or the session reaches REALTIME_MAX_SESSION_S.

        A silent client (a muted participant) keeps its session: the server pings the socket (`python -m app` sets
        uvicorn's keep-alive from REALTIME_IDLE_TIMEOUT_S) and closes only one that stops answering, which arrives
        here as a disconnect."""
        deadline = time.monotonic() + self.settings.realtime_max_session_s
        while True:
            try:
                message = await asyncio.wait_for(self.socket.receive(), timeout=max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                self.outcome = "max_duration"
                await self.live.drain(DRAIN_SECONDS)
                text = f"Session ended: it reached REALTIME_MAX_SESSION_S ({self.settings.realtime_max_session_s:g} s)"
                self.send(_error(text, code="session_expired", kind="invalid_request_error"))
                return
            if message["type"] == "websocket.disconnect":
                if message.get("code") not in CLOSED_BY_CLIENT:
                    self.outcome = "connection_lost"  # no close frame: gone, or it stopped answering pings
                return
            raw = message.get("text")
            if not isinstance(raw, str):
                self.send(_error("Send client events as JSON text frames", code="invalid_value"))
                continue
            await self.handle(raw)


def _session_limit_reached(services: Services) -> bool:
    return services.runner.live_sessions >= services.settings.realtime.realtime_max_sessions


@websocket(ROUTE, name="realtime")
async def realtime(socket: WebSocket[Any, Any, Any]) -> None:
    """OpenAI's Realtime transcription protocol (intent=transcription)."""
    services = cast(Services, socket.app.state.services)
    offered = cast(list[str], socket.scope.get("subprotocols") or [])
    await socket.accept(subprotocols=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    intent = socket.query_params.get("intent")
    refusal: wire.ErrorEvent | None = None
    if intent not in (None, "transcription"):
        refusal = _error(
            f"Invalid intent '{intent}': this server has transcription sessions only (intent=transcription)",
            code="invalid_value",
            param="intent",
        )
    elif _session_limit_reached(services):
        services.metrics.live_session_ended("refused")
        refusal = _error(
            f"Too many live sessions (REALTIME_MAX_SESSIONS={services.settings.realtime.realtime_max_sessions});"
            " try again later",
            code="session_limit",
            kind="server_error",
        )
    if refusal is not None:
        await socket.send_text(wire.encode_event(refusal))
        await socket.close(code=CLOSE_TRY_AGAIN_LATER if refusal.error.code == "session_limit" else CLOSE_POLICY)
        return
    try:
        connection = _Connection(socket, services)
    except AppError as exc:  # the default model cannot be had: say so, and close
        await socket.send_text(wire.encode_event(_app_error(exc, None)))
        await socket.close(code=CLOSE_TRY_AGAIN_LATER)
        return
    services.metrics.set_live_sessions(services.runner.live_sessions)
    started = time.monotonic()
    connection.send(wire.SessionCreated(_state(connection.session_id, connection.request, connection.config)))
    sender = asyncio.create_task(connection.sender())
    try:
        await connection.receive_loop()
    except WebSocketDisconnect:
        pass
    except Exception as exc:  # a bug: this session ends with an error event, the server goes on
        connection.outcome = "internal_error"
        log.error("realtime_error", error_type=type(exc).__name__, exc_info=exc)
        connection.send(_error("Internal server error", code="internal_error", kind="server_error"))
    finally:
        await connection.live.close()
        connection.outbox.put_nowait(None)
        try:
            await asyncio.wait_for(sender, timeout=5.0)
        except Exception:  # the client is gone or stalled: nothing more can reach it
            sender.cancel()
        if connection.outcome != "closed_by_client":
            with contextlib.suppress(Exception):
                await socket.close(code=1000)
        services.metrics.set_live_sessions(services.runner.live_sessions)
        services.metrics.live_session_ended(connection.outcome)
        log.info(
            "realtime_session",
            route=ROUTE,
            outcome=connection.outcome,
            seconds=round(time.monotonic() - started, 3),
            audio_seconds=round(connection.live.audio_seconds, 2),
            utterances=connection.live.utterances,
            model=connection.config.plan.model,
        )


ROUTES = [realtime]
