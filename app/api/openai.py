"""OpenAI's audio API: /v1/audio/transcriptions, /v1/audio/translations, /v1/models.

Routes stay thin: parse the form, validate parameters, hand the file to the Transcriber, render the result.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar, cast, get_args

import msgspec
import structlog
from litestar import Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.response import Stream

from app import render
from app.api.context import AnyRequest, ClientGone, record_of, services_of, until_disconnect
from app.api.deps import Services
from app.api.errors import describe
from app.api.forms import Form, UploadedFile, read_form
from app.api.reflector import reflector_upload
from app.audio.decode import probe_audio
from app.errors import AppError, Cancelled, InvalidInput
from app.render.reflector import is_reflector_form
from app.settings import ResponseFormat
from app.transcript import Segment, Task, Transcript
from app.transcription.service import Job, RunSummary
from app.worker.cancel import CancelToken

T = TypeVar("T")
log = structlog.get_logger("app.api")
RESPONSE_FORMATS: tuple[str, ...] = get_args(ResponseFormat)
GRANULARITIES = ("word", "segment")
TIMED_FORMATS = ("verbose_json", "srt", "vtt")
TEXT_MEDIA = {"text": "text/plain; charset=utf-8", "srt": "text/plain; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}


class Options(msgspec.Struct, frozen=True, kw_only=True):
    response_format: ResponseFormat
    words: bool
    segments: bool
    stream: bool


def parse_bool(value: str | None, param: str) -> bool:
    if value is None or value == "":
        return False
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise InvalidInput(f"Invalid value for '{param}': expected true or false, got '{value}'", about=param)


def parse_options(form: Form, default_format: ResponseFormat) -> Options:
    response_format = (form.first("response_format") or default_format).strip()
    if response_format not in RESPONSE_FORMATS:
        raise InvalidInput(
            f"Invalid response_format '{response_format}': use one of {', '.join(RESPONSE_FORMATS)}",
            about="response_format",
        )
    granularities = form.all("timestamp_granularities[]", "timestamp_granularities")
    for value in granularities:
        if value not in GRANULARITIES:
            raise InvalidInput(
                f"Invalid timestamp_granularities value '{value}': use 'word' and/or 'segment'",
                about="timestamp_granularities",
            )
    temperature = form.first("temperature")
    if temperature:
        try:
            number = float(temperature)
        except ValueError:
            number = -1.0
        if not 0.0 <= number <= 1.0:
            raise InvalidInput(f"Invalid temperature '{temperature}': use a number from 0 to 1", about="temperature")
    words, segments = render.verbose_flags(granularities)
    return Options(
        response_format=cast(ResponseFormat, response_format),
        words=words,
        segments=segments,
        stream=parse_bool(form.first("stream"), "stream"),
    )


def single_file(form: Form) -> UploadedFile:
    files = form.files_named("file")
    if not files:
        raise InvalidInput("Missing required parameter: 'file' (the audio to transcribe)", about="audio")
    if len(files) > 1:
        raise InvalidInput("Send exactly one 'file'", about="audio")
    return files[0]


def render_transcript(transcript: Transcript, options: Options) -> Response[bytes | str]:
    match options.response_format:
        case "json":
            return Response(render.render_json(transcript), media_type="application/json")
        case "verbose_json":
            # Words carry their leading space (ADR 7): Reflector's live path joins them with "".
            body = render.render_verbose_json(
                transcript, words=options.words, segments=options.segments, spaced_words=True
            )
            return Response(body, media_type="application/json")
        case "text":
            return Response(render.render_text(transcript), media_type=TEXT_MEDIA["text"])
        case "srt":
            return Response(render.render_srt(transcript), media_type=TEXT_MEDIA["srt"])
        case "vtt":
            return Response(render.render_vtt(transcript), media_type=TEXT_MEDIA["vtt"])


def error_event(exc: Exception) -> bytes:
    if isinstance(exc, AppError):
        return render.sse_error(describe(exc).body)
    return render.sse_error(render.ErrorBody("Internal server error", "server_error", None, "internal_error"))


async def respond(
    request: AnyRequest, services: Services, task: Task, form: Form, stack: contextlib.ExitStack
) -> Response[bytes | str] | Stream:
    """Validate the OpenAI form and transcribe its file; owns `stack` (the queue slot and the temp files)."""
    settings = services.settings
    options = parse_options(form, settings.default_response_format)
    upload = single_file(form)
    language = None if task == "translate" else form.first("language")
    job = services.transcriber.job(form.first("model"), language, form.first("prompt"), task)
    # Word timings (Whisper's costly alignment) only for the timed formats: they also make Whisper's segments, and
    # so a stream's segment events, follow the speech more finely. json and text need none.
    job = msgspec.structs.replace(job, words=options.response_format in TIMED_FORMATS)
    record = record_of(request.scope)
    if record is not None:
        record.model = job.model
    # Refuse what cannot be decoded (or is declared too long) now, with a plain 400, before queueing or streaming.
    await asyncio.to_thread(probe_audio, upload.path, float(settings.max_audio_seconds))
    cancel = CancelToken()
    if options.stream:
        owned = stack.pop_all()  # the stream now owns the queue slot and the temp files

        def finish() -> None:
            cancel.cancel()
            owned.close()

        return Stream(
            stream_events(services, upload, job, options, cancel, request, owned),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            background=BackgroundTask(finish),
        )
    try:
        transcript, summary = await until_disconnect(
            request, services.transcriber.transcribe(upload.path, job, cancel), cancel
        )
    except ClientGone:
        if record is not None:
            record.status_override = 499
        services.cancelled()
        raise
    if record is not None:
        record.audio_seconds = summary.duration
        record.processing_seconds = summary.processing_seconds
    return render_transcript(transcript, options)


async def stream_events(
    services: Services,
    upload: UploadedFile,
    job: Job,
    options: Options,
    cancel: CancelToken,
    request: AnyRequest,
    owned: contextlib.ExitStack,
) -> AsyncIterator[bytes]:
    """SSE: a delta per segment (plus a segment event for timed formats), keep-alive comments, then done."""
    record = record_of(request.scope)
    keepalive = services.settings.keepalive_seconds
    joiner = render.DeltaJoiner()
    texts: list[str] = []
    finished = False
    with owned:
        items = services.transcriber.stream(upload.path, job, cancel)
        pending: asyncio.Future[Segment | RunSummary] | None = None
        try:
            index = 0
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(items))
                done, _ = await asyncio.wait({pending}, timeout=keepalive)
                if not done:
                    yield render.SSE_KEEPALIVE
                    continue
                try:
                    item = pending.result()
                except StopAsyncIteration:
                    break
                finally:
                    pending = None
                if isinstance(item, RunSummary):
                    text = "".join(texts)
                    yield render.sse_done(text, render.usage_seconds(item.duration))
                    yield render.SSE_DONE
                    finished = True
                    if record is not None:
                        record.audio_seconds = item.duration
                        record.processing_seconds = item.processing_seconds
                    continue
                delta = joiner.push(item.text)
                if delta:
                    texts.append(delta)
                    yield render.sse_delta(delta)
                if options.response_format in TIMED_FORMATS:
                    yield render.sse_segment(index, item)
                index += 1
        except (Cancelled, asyncio.CancelledError, GeneratorExit):
            cancel.cancel()
            if record is not None:
                record.status_override = 499
            services.cancelled()
            raise
        except Exception as exc:  # an error mid-stream becomes an error event; the stream then closes
            if not isinstance(exc, AppError):
                log.error("stream_error", error_type=type(exc).__name__, exc_info=exc)
            if record is not None:
                record.error = type(exc).__name__
                record.status_override = describe(exc).status if isinstance(exc, AppError) else 500
            yield error_event(exc)
        finally:
            if pending is not None:
                pending.cancel()
            if not finished:
                cancel.cancel()
            await items.aclose()  # type: ignore[attr-defined]


async def handle_upload(request: AnyRequest, task: Task) -> Response[bytes | str] | Stream:
    services = services_of(request)
    with contextlib.ExitStack() as stack:
        stack.enter_context(services.runner.admission())
        form = await read_form(request, max_bytes=services.settings.max_upload_bytes)
        stack.callback(form.close)
        if task == "transcribe" and is_reflector_form(form.fields, [f.field for f in form.files]):
            return await reflector_upload(request, services, form)
        return await respond(request, services, task, form, stack)
    raise AssertionError("unreachable")


@post("/v1/audio/transcriptions", status_code=200, summary="Transcribe audio (OpenAI-compatible; Reflector form too)")
async def create_transcription(request: AnyRequest) -> Response[bytes | str] | Stream:
    return await handle_upload(request, "transcribe")


@post("/v1/audio/translations", status_code=200, summary="Translate speech into English text (OpenAI-compatible)")
async def create_translation(request: AnyRequest) -> Response[bytes | str] | Stream:
    return await handle_upload(request, "translate")


@get("/v1/models", summary="List the models this server may use")
async def list_models(request: AnyRequest) -> dict[str, object]:
    services = services_of(request)
    data = []
    for name in services.settings.allowed_models:
        info = services.models.info(name)
        data.append(
            {
                "id": name,
                "object": "model",
                "created": 0,
                "owned_by": info.owned_by,
                "family": info.family,
                "languages": None if info.languages is None else sorted(info.languages),
                "translation": info.can_translate,
                "default": name == services.settings.model,
                "state": "loaded" if services.models.is_loaded(name) else "unloaded",
            }
        )
    return {"object": "list", "data": data}


ROUTES = [create_transcription, create_translation, list_models]
