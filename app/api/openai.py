"""OpenAI's audio API: answering an OpenAI-form upload (json, text, verbose_json, srt, vtt, or a stream), and
GET /v1/models. The upload routes themselves are in `app/api/transcriptions.py` (they serve Reflector's form too).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import msgspec
import structlog
from litestar import Response, get
from litestar.response import Stream

from app import render
from app.api.errors import describe
from app.api.forms import Form
from app.api.jobs import RequestJob
from app.api.params import Options, parse_options, single_file
from app.api.requests import AnyRequest, services_of
from app.api.resume import one_item
from app.api.sse import sse_response
from app.audio.decode import probe_audio
from app.errors import AppError, Cancelled
from app.transcript import Segment, Task, Transcript
from app.transcription.service import RunSummary
from app.worker.cancel import CancelToken

log = structlog.get_logger("app.api")
TIMED_FORMATS = ("verbose_json", "srt", "vtt")
TEXT_MEDIA = {"text": "text/plain; charset=utf-8", "srt": "text/plain; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}
INTERNAL_ERROR = render.ErrorBody("Internal server error", "server_error", None, "internal_error")


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


async def answer_upload(job: RequestJob, form: Form, task: Task) -> Response[bytes | str] | Stream:
    """Validate the OpenAI form and transcribe its file (the job holds the queue slot and the form's files)."""
    services = job.services
    settings = services.settings
    options = parse_options(form, settings.http.default_response_format)
    upload = single_file(form)
    language = None if task == "translate" else form.first("language")
    spec = services.transcriber.job(form.first("model"), language, form.first("prompt"), task)
    # Word timings (Whisper's costly alignment) only for the timed formats: they also make Whisper's segments, and
    # so a stream's segment events, follow the speech more finely. json and text need none.
    spec = msgspec.structs.replace(spec, words=options.response_format in TIMED_FORMATS)
    job.uses_model(spec.model)
    # The same request retried (same bytes, model, parameters) attaches to its job (issue 14); else a new one starts.
    key = form.request_key(f"{task}:openai")
    shared = job.resume(key)
    if shared is None:
        # Refuse what cannot be decoded (or is declared too long) now, with a plain 400, before queueing or streaming.
        await asyncio.to_thread(probe_audio, upload.path, float(settings.audio.max_audio_seconds))
        job.admit()
        cancel = CancelToken()
        work: AsyncIterator[Segment | RunSummary | tuple[Transcript, RunSummary]]
        if options.stream:
            work = services.transcriber.stream(upload.path, spec, cancel)
        else:
            work = one_item(services.transcriber.transcribe(upload.path, spec, cancel))
        shared = job.share(key, work, cancel)
    if options.stream:
        events = transcript_events(job, shared.follow(), timed=options.response_format in TIMED_FORMATS)
        return sse_response(events, keepalive_seconds=settings.http.keepalive_seconds, owned=job.hand_over())
    transcript, summary = await job.run(shared.result(), on_worker=False)
    job.finished(summary.duration, summary.processing_seconds)
    return render_transcript(transcript, options)


async def transcript_events(
    job: RequestJob, items: AsyncGenerator[Segment | RunSummary], *, timed: bool
) -> AsyncGenerator[bytes]:
    """A delta per segment (plus a segment event for timed formats), then done and [DONE]; an error event instead
    when the work fails; a hang-up stops the work."""
    joiner = render.DeltaJoiner()
    texts: list[str] = []
    index = 0
    try:
        async for item in items:
            if isinstance(item, RunSummary):
                yield render.sse_done("".join(texts), render.usage_seconds(item.duration))
                yield render.SSE_DONE
                job.finished(item.duration, item.processing_seconds)
                continue
            delta = joiner.push(item.text)
            if delta:
                texts.append(delta)
                yield render.sse_delta(delta)
            if timed:
                yield render.sse_segment(index, item)
            index += 1
    except (Cancelled, asyncio.CancelledError, GeneratorExit):
        job.hung_up()
        raise
    except Exception as exc:  # an error mid-stream becomes an error event; the stream then closes
        if isinstance(exc, AppError):
            error = describe(exc)
            job.failed(exc, error.status)
            yield render.sse_error(error.body)
        else:
            log.error("stream_error", error_type=type(exc).__name__, exc_info=exc)
            job.failed(exc, 500)
            yield render.sse_error(INTERNAL_ERROR)
    finally:
        job.cancel.cancel()  # nothing more is read: a job still running stops at its next batch boundary
        await items.aclose()


@get("/v1/models", summary="List the models this server may use")
async def list_models(request: AnyRequest) -> dict[str, object]:
    services = services_of(request)
    data = []
    for name in services.settings.engines.allowed_models:
        info = services.transcriber.model_info(name)
        data.append(
            {
                "id": name,
                "object": "model",
                "created": 0,
                "owned_by": info.owned_by,
                "family": info.family,
                "languages": None if info.languages is None else sorted(info.languages),
                "translation": info.can_translate,
                "default": name == services.settings.engines.model,
                "state": "loaded" if services.transcriber.is_resident(name) else "unloaded",
            }
        )
    return {"object": "list", "data": data}


ROUTES = [list_models]
