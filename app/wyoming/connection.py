"""One Wyoming connection: events in, a `LiveSession` per audio stream, events out.

    describe                                         -> info
    transcribe {name?, language?, context?, transcript_names?, transcript_terms?}   (for the next audio stream)
    audio-start {rate, width, channels}              -> transcript-start
    audio-chunk {rate?, width?, channels?} + PCM     -> transcript-chunk ... (partial text, while audio arrives)
    audio-stop                                       -> transcript {text, language?, context?}, transcript-stop
    ping                                             -> pong

Audio of any declared rate, width and channel count is converted to 16 kHz mono (`app.audio.pcm`) and fed to a
`LiveSession` with server VAD: each utterance within the stream is decoded on the Runner's live lane as soon as its
speaker pauses, and its partial text goes out as `transcript-chunk`s (append-only; utterances joined by a space, so
the chunks usually concatenate to the transcript, which is the authority). At audio-stop an utterance still open is
committed, and the transcript is every utterance's text joined. `name` picks the model (the OpenAI aliases and none
mean MODEL; `auto` routes by `language`); Home Assistant's entity and area names (`transcript_names`, then
`transcript_terms`) become keywords, which Whisper uses as hotwords.

Limits: a stream is a live session (REALTIME_MAX_SESSIONS for both surfaces together); a connection with no event
for REALTIME_IDLE_TIMEOUT_S, or open for REALTIME_MAX_SESSION_S, is closed with an `error` event; a stream reaching
WYOMING_MAX_UTTERANCE_S gets the transcript of what was heard and the connection closes. A bad event (wrong types,
audio before audio-start) gets an `error` event {text, code} and the connection stays open; a refused `transcribe`
or `audio-start` (an unknown model, a language it cannot do, a format we cannot read, no free live session) and a
framing error (bad JSON, bad or oversized lengths) get one and the connection closes. One log line per
connection, never with text.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import msgspec
import structlog
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong

from app.api.deps import Services
from app.audio.pcm import PcmConverter, PcmFormat
from app.audio.types import SAMPLE_RATE
from app.errors import AppError
from app.transcript import join_segments
from app.transcription.live import (
    Committed,
    Completed,
    Failed,
    LiveConfig,
    LiveEvent,
    LiveSession,
    Partial,
    TurnDetection,
)
from app.wyoming.framing import FramingError, read_event
from app.wyoming.info import describe

log = structlog.get_logger("app.wyoming")
MAX_KEYWORDS = 50  # Home Assistant may send hundreds of names: the first ones (names before terms) are used
MAX_KEYWORD_CHARS = 100
DRAIN_SECONDS = 30.0  # after audio-stop, how long the utterances still being decoded may take
WRITE_TIMEOUT_SECONDS = 10.0  # a client that stops reading is dropped
LINGER_SECONDS = 1.0  # after the server ends a connection, what the client still sends is read and dropped


class TranscribeRequest(msgspec.Struct, kw_only=True):
    """`transcribe`'s data, as typed as the protocol means it (unknown keys are ignored)."""

    name: str | None = None
    language: str | None = None
    context: dict[str, Any] | None = None
    vad_sensitivity: str | None = None  # for servers that end commands themselves; ours does not (the client does)
    transcript_names: list[str] | None = None
    transcript_terms: list[str] | None = None


class AudioFormatData(msgspec.Struct):
    rate: int
    width: int
    channels: int


class ChunkFormatData(msgspec.Struct):
    rate: int | None = None
    width: int | None = None
    channels: int | None = None


class PingData(msgspec.Struct):
    text: str | None = None


class ProtocolViolation(Exception):
    """An event that is well-formed but not allowed now (or with these values): answered, the connection stays."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _data(event: Event, kind: type[msgspec.Struct]) -> Any:
    try:
        return msgspec.convert(event.data, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise ProtocolViolation(f"{event.type}: {exc}", "invalid_value") from None


def keywords(request: TranscribeRequest) -> tuple[str, ...]:
    """Names first, then terms; blanks, repeats and over-long ones dropped; at most MAX_KEYWORDS."""
    words = [w.strip() for w in [*(request.transcript_names or ()), *(request.transcript_terms or ())]]
    kept = [w for w in dict.fromkeys(words) if w and len(w) <= MAX_KEYWORD_CHARS]
    return tuple(kept[:MAX_KEYWORDS])


class _Stream:
    """One audio-start ... audio-stop: its live session, its converter and what it has said so far."""

    def __init__(self, connection: Connection, config: LiveConfig, source: PcmFormat, context: dict[str, Any] | None):
        self.connection = connection
        self.config = config
        self.source = source
        self.context = context
        self.converter = PcmConverter(source)
        self.texts: list[str] = []  # completed utterances, in order
        self.committed = 0
        self.finished = 0  # utterances completed or failed
        self.error: AppError | None = None
        self.chunked = ""  # transcript-chunk text sent so far
        self.chunk_item: str | None = None
        self.audio_seconds = 0.0
        self.session = LiveSession(connection.services.live, config, self.emit)

    def emit(self, event: LiveEvent) -> None:
        match event:
            case Committed():
                self.committed += 1
            case Partial(item_id, delta):
                if self.chunked and item_id != self.chunk_item:
                    delta = " " + delta.lstrip()
                self.chunk_item = item_id
                self.chunked += delta
                self.connection.send(TranscriptChunk(text=delta).event())
            case Completed(_, transcript):
                self.finished += 1
                self.texts.append(transcript.strip())
            case Failed(_, error):
                self.finished += 1
                self.error = self.error or error

    async def feed(self, chunk: Event) -> None:
        declared = _data(chunk, ChunkFormatData)
        source = PcmFormat(
            declared.rate or self.source.rate,
            declared.width or self.source.width,
            declared.channels or self.source.channels,
        )
        if source != self.source:  # a chunk may carry its own format: convert from that one from now on
            self.converter = PcmConverter(source)
            self.source = source
        pcm = self.converter.feed(chunk.payload or b"")
        self.audio_seconds += len(pcm) / 2 / SAMPLE_RATE
        if pcm:
            await self.session.append(pcm)

    async def finish(self) -> Event:
        """The stream's last word: its transcript, or the error of an utterance that failed."""
        self.session.end_of_audio()
        await self.session.drain(DRAIN_SECONDS)
        if self.error is not None:
            return Error(text=self.error.message, code=self.error.code or "transcription_failed").event()
        if self.finished < self.committed:
            return Error(text=f"The transcript was not ready within {DRAIN_SECONDS:g} s", code="timeout").event()
        return Transcript(
            text=join_segments(self.texts), language=self.config.plan.decoding.language, context=self.context
        ).event()

    async def close(self) -> None:
        await self.session.close()


class Connection:
    def __init__(self, services: Services, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.services = services
        self.reader = reader
        self.writer = writer
        self.limits = services.settings.realtime
        self.outbox: asyncio.Queue[Event | None] = asyncio.Queue()
        self.request = TranscribeRequest()
        self.config: LiveConfig | None = None  # the next stream's, once a transcribe was checked
        self.stream: _Stream | None = None
        self.outcome = "closed_by_client"
        self.transcripts = 0
        self.audio_seconds = 0.0
        self.model: str | None = None

    def send(self, event: Event) -> None:
        self.outbox.put_nowait(event)

    async def _sender(self) -> None:
        while (event := await self.outbox.get()) is not None:
            try:
                await asyncio.wait_for(async_write_event(event, self.writer), WRITE_TIMEOUT_SECONDS)
            except (TimeoutError, ConnectionError):
                self.writer.transport.abort()  # the receive loop sees the end of the stream
                return

    async def serve(self) -> None:
        sender = asyncio.create_task(self._sender())
        started = time.monotonic()
        try:
            await self._receive_loop(started + self.limits.realtime_max_session_s)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-event
        except Exception as exc:  # a bug: this connection ends with an error event, the server goes on
            self.outcome = "internal_error"
            log.error("wyoming_error", error_type=type(exc).__name__, exc_info=exc)
            self.send(Error(text="Internal server error", code="internal_error").event())
        finally:
            await self._end_stream()
            self.outbox.put_nowait(None)
            try:
                await asyncio.wait_for(sender, timeout=5.0)
            except Exception:  # stalled: nothing more can reach the client
                sender.cancel()
            if self.outcome != "closed_by_client":
                await self._linger()
            self.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), timeout=2.0)
            self.services.metrics.wyoming_connection_ended(self.outcome)
            log.info(
                "wyoming_connection",
                outcome=self.outcome,
                seconds=round(time.monotonic() - started, 3),
                audio_seconds=round(self.audio_seconds, 2),
                transcripts=self.transcripts,
                model=self.model,
            )

    async def _linger(self) -> None:
        """Closing while the client still sends would reset the connection, and a reset can discard our last event
        before the client reads it: end our side, then read and drop its bytes for a moment."""
        with contextlib.suppress(Exception):
            self.writer.write_eof()
            until = time.monotonic() + LINGER_SECONDS
            while (left := until - time.monotonic()) > 0:
                dropped: bytes = await asyncio.wait_for(self.reader.read(1 << 16), left)
                if not dropped:
                    return

    async def _receive_loop(self, deadline: float) -> None:
        idle = self.limits.realtime_idle_timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                event = await asyncio.wait_for(read_event(self.reader), timeout=max(min(idle, left), 0.0))
            except TimeoutError:
                expired = left <= idle
                self.outcome = "max_duration" if expired else "idle_timeout"
                text = (
                    f"Connection closed: it reached REALTIME_MAX_SESSION_S ({self.limits.realtime_max_session_s:g} s)"
                    if expired
                    else f"Connection closed: no complete event for {idle:g} s (REALTIME_IDLE_TIMEOUT_S)"
                )
                self.send(Error(text=text, code="session_expired" if expired else "idle_timeout").event())
                return
            except FramingError as exc:
                self.outcome = "protocol_error"
                self.send(Error(text=exc.message, code=exc.code).event())
                return
            if event is None:
                return
            try:
                if not await self._handle(event):
                    return
            except ProtocolViolation as exc:
                self.send(Error(text=exc.message, code=exc.code).event())
            except AppError as exc:
                self.send(Error(text=exc.message, code=exc.code or "invalid_request").event())

    async def _handle(self, event: Event) -> bool:
        """Act on one event; False ends the connection."""
        if AudioChunk.is_type(event.type):
            if self.stream is None:
                raise ProtocolViolation("audio-chunk before audio-start", "audio_not_started")
            await self.stream.feed(event)
            if self.stream.audio_seconds >= self.services.settings.wyoming.wyoming_max_utterance_s:
                self.outcome = "max_utterance"
                await self._finish_stream()
                return False
            return True
        if Describe.is_type(event.type):
            self.send(describe(self.services).event())
        elif Ping.is_type(event.type):
            self.send(Pong(text=_data(event, PingData).text).event())
        elif Transcribe.is_type(event.type):
            if self.stream is not None:
                raise ProtocolViolation("transcribe during an audio stream: send audio-stop first", "audio_started")
            return self._transcribe(event)
        elif AudioStart.is_type(event.type):
            return self._start_stream(event)
        elif AudioStop.is_type(event.type):
            if self.stream is None:
                raise ProtocolViolation("audio-stop before audio-start", "audio_not_started")
            await self._finish_stream()
        # Any other event is not for a speech-to-text server: dropped, as the protocol asks.
        return True

    def _transcribe(self, event: Event) -> bool:
        """Checked at once: a bad model or language is answered before any audio, and ends the connection (the
        audio the client sends next must not go to the default model instead)."""
        try:
            request = _data(event, TranscribeRequest)
            self.config = self._config(request)
        except (ProtocolViolation, AppError) as exc:
            self.outcome = "refused"
            self.send(Error(text=exc.message, code=exc.code or "invalid_request").event())
            return False
        self.request = request
        return True

    def _config(self, request: TranscribeRequest) -> LiveConfig:
        return self.services.live.config(
            model=request.name,
            language=request.language,
            prompt=None,
            turn_detection=TurnDetection(),
            input_rate=SAMPLE_RATE,
            keywords=keywords(request),
        )

    def _start_stream(self, event: Event) -> bool:
        """A refused audio-start (bad format, no model for it, too many sessions) is answered and ends the
        connection: the audio the client sends next has nowhere to go."""
        if self.stream is not None:
            raise ProtocolViolation("audio-start during an audio stream: send audio-stop first", "audio_started")
        services = self.services
        limit = services.settings.realtime.realtime_max_sessions
        try:
            declared = _data(event, AudioFormatData)
            source = PcmFormat(declared.rate, declared.width, declared.channels)
            source.check()
            config = self.config or self._config(self.request)
            if services.runner.live_sessions >= limit:
                raise ProtocolViolation(
                    f"Too many live sessions (REALTIME_MAX_SESSIONS={limit}); try again later", "session_limit"
                )
        except (ProtocolViolation, AppError) as exc:
            self.outcome = "refused"
            self.send(Error(text=exc.message, code=exc.code or "invalid_request").event())
            return False
        self.stream = _Stream(self, config, source, self.request.context)
        services.metrics.set_live_sessions(services.runner.live_sessions)  # the session counted itself
        self.model = config.plan.model
        self.send(TranscriptStart(language=config.plan.decoding.language, context=self.request.context).event())
        return True

    async def _finish_stream(self) -> None:
        stream = self.stream
        assert stream is not None
        stopped = time.monotonic()
        last = await stream.finish()
        self.send(last)
        if Transcript.is_type(last.type):
            self.services.metrics.observe_wyoming_latency(time.monotonic() - stopped)
            self.transcripts += 1
            self.send(TranscriptStop().event())
        await self._end_stream()
        self.request, self.config = TranscribeRequest(), None  # a transcribe is for one audio stream

    async def _end_stream(self) -> None:
        stream, self.stream = self.stream, None
        if stream is None:
            return
        self.audio_seconds += stream.audio_seconds
        await stream.close()
        self.services.metrics.set_live_sessions(self.services.runner.live_sessions)
