"""OpenAI's audio API: answering an OpenAI-form upload (json, text, verbose_json, srt, vtt, diarized_json, or a
stream), and GET /v1/models. The upload routes themselves are in `app/api/transcriptions.py` (they serve
Reflector's form too).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path

import msgspec
import structlog
from litestar import Response, get
from litestar.response import Stream

from app import render
from app.api import contract
from app.api.errors import describe
from app.api.forms import Form
from app.api.jobs import MODEL_HEADER, RequestJob
from app.api.params import (
    KnownSpeakers,
    Options,
    decode_data_url,
    parse_chunking,
    parse_keywords,
    parse_known_speakers,
    parse_options,
    single_file,
)
from app.api.requests import AnyRequest, services_of
from app.api.resume import one_item
from app.api.sse import sse_response
from app.audio.decode import probe_audio
from app.diarization.speakers import KnownVoice, load_known_voices, split_by_speaker
from app.errors import AppError, Cancelled, InvalidInput
from app.settings import AUTO_MODEL
from app.transcript import DiarizedSegment, Segment, Task, Transcript
from app.transcription.service import Job, RunSummary
from app.worker.cancel import CancelToken

log = structlog.get_logger("app.api")
TIMED_FORMATS = ("verbose_json", "srt", "vtt", "diarized_json")
TEXT_MEDIA = {"text": "text/plain; charset=utf-8", "srt": "text/plain; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}
INTERNAL_ERROR = render.ErrorBody("Internal server error", "server_error", None, "internal_error")


def render_transcript(
    transcript: Transcript, options: Options, diarized: Sequence[DiarizedSegment] = ()
) -> Response[bytes | str]:
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
        case "diarized_json":  # the transcript's segments split and labelled by speaker
            body = render.render_diarized_json(diarized, transcript.duration)
            return Response(body, media_type="application/json")


async def answer_upload(job: RequestJob, form: Form, task: Task) -> Response[bytes | str] | Stream:
    """Validate the OpenAI form and transcribe its file (the job holds the queue slot and the form's files)."""
    services = job.services
    settings = services.settings
    options = parse_options(form, settings.http.default_response_format)
    diarized = options.response_format == "diarized_json"
    if diarized and task == "translate":
        raise InvalidInput("response_format 'diarized_json' is for transcriptions only", about="response_format")
    known = parse_known_speakers(form)
    if known is not None and not diarized:
        raise InvalidInput("known_speaker_names[] needs response_format=diarized_json", about="known_speaker_names")
    upload = single_file(form)
    language = None if task == "translate" else form.first("language")
    keywords = parse_keywords(form)
    spec = services.transcriber.job(form.first("model"), language, form.first("prompt"), task, keywords)
    # Word timings (Whisper's costly alignment) only for the timed formats: they also make Whisper's segments, and
    # so a stream's segment events, follow the speech more finely. json and text need none. diarized_json splits
    # segments at speaker changes by word times.
    spec = msgspec.structs.replace(spec, words=options.response_format in TIMED_FORMATS, chunking=parse_chunking(form))
    job.uses_model(spec.model)
    # The same request retried (same bytes, model, parameters) attaches to its job (issue 14); else a new one starts.
    # diarized_json is not resumable: its speaker step reads the upload after the transcription (ADR 32).
    key = None if diarized else form.request_key(f"{task}:openai")
    shared = None if key is None else job.resume(key)
    if shared is None:
        # Refuse what cannot be decoded (or is declared too long) now, with a plain 400, before queueing or streaming.
        await asyncio.to_thread(probe_audio, upload.path, float(settings.audio.max_audio_seconds))
        job.admit()
        # MODEL=auto: the model is chosen now (detecting the language if needed), so a stream's header can name it.
        spec = job.routed(await job.run(services.transcriber.route(upload.path, spec, job.cancel)))
    if diarized:
        return await answer_diarized(job, upload.path, spec, options, known)
    if shared is None:
        assert key is not None
        cancel = CancelToken()
        work: AsyncIterator[Segment | RunSummary | tuple[Transcript, RunSummary]]
        if options.stream:
            work = services.transcriber.stream(upload.path, spec, cancel)
        else:
            work = one_item(services.transcriber.transcribe(upload.path, spec, cancel))
        shared = job.share(key, work, cancel, model=spec.model)
    headers = {MODEL_HEADER: shared.model}  # the model that transcribed the answer
    if options.stream:
        events = transcript_events(job, shared.follow(), timed=options.response_format in TIMED_FORMATS)
        return sse_response(
            events, keepalive_seconds=settings.http.keepalive_seconds, owned=job.hand_over(), headers=headers
        )
    transcript, summary = await job.run(shared.result(), on_worker=False)
    job.finished(summary.duration, summary.processing_seconds)
    response = render_transcript(transcript, options)
    response.headers.update(headers)
    return response


async def answer_diarized(
    job: RequestJob, path: Path, spec: Job, options: Options, known: KnownSpeakers | None
) -> Response[bytes | str] | Stream:
    """diarized_json: the transcription with word timings, then who said what (the diarizer on the same file)."""
    services, settings = job.services, job.services.settings
    headers = {MODEL_HEADER: spec.model}
    voices = await asyncio.to_thread(known_voices, known, settings.speakers.speakers_dir) if known else []
    speakers = SpeakerStep(job, path, voices)
    if options.stream:
        items = services.transcriber.stream(path, spec, job.cancel)
        events = transcript_events(job, items, timed=False, speakers=speakers)
        return sse_response(
            events, keepalive_seconds=settings.http.keepalive_seconds, owned=job.hand_over(), headers=headers
        )
    transcript, summary = await job.run(services.transcriber.transcribe(path, spec, job.cancel))
    by_speaker = await job.run(speakers(list(transcript.segments)))
    job.finished(summary.duration, summary.processing_seconds + speakers.processing_seconds)
    response = render_transcript(transcript, options, by_speaker)
    response.headers.update(headers)
    return response


def known_voices(known: KnownSpeakers, speakers_dir: Path) -> list[KnownVoice]:
    """The request's known voices: its data URLs (or uploaded files) decoded and checked, or saved voices by name."""
    references = (
        None
        if known.references is None
        else [decode_data_url(f.path) if f.filename == "" else f.path for f in known.references]
    )
    return load_known_voices(known.names, references, speakers_dir)


class SpeakerStep:
    """Who said what in a finished transcription of `path`: its segments split by speaker and labelled."""

    def __init__(self, job: RequestJob, path: Path, voices: list[KnownVoice]) -> None:
        self.job = job
        self.path = path
        self.voices = voices
        self.processing_seconds = 0.0

    async def __call__(self, segments: list[Segment]) -> list[DiarizedSegment]:
        turns = await self.job.services.diarizer.who_spoke(self.path, self.voices, cancel=self.job.cancel)
        self.processing_seconds = turns.processing_seconds
        return split_by_speaker(segments, turns.segments, turns.names)


async def transcript_events(
    job: RequestJob,
    items: AsyncGenerator[Segment | RunSummary],
    *,
    timed: bool,
    speakers: SpeakerStep | None = None,
) -> AsyncGenerator[bytes]:
    """A delta per segment (plus a segment event for timed formats), then done and [DONE]; an error event instead
    when the work fails; a hang-up stops the work. With `speakers` (diarized_json), the segment events come once
    the transcription is done: one per diarized segment, with its speaker."""
    joiner = render.DeltaJoiner()
    texts: list[str] = []
    heard: list[Segment] = []
    index = 0
    try:
        async for item in items:
            if isinstance(item, RunSummary):
                processing = item.processing_seconds
                if speakers is not None:
                    diarized = await speakers(heard)
                    for number, segment in enumerate(diarized):
                        yield render.sse_speaker_segment(number, segment)
                    processing += speakers.processing_seconds
                yield render.sse_done("".join(texts), render.usage_seconds(item.duration))
                yield render.SSE_DONE
                job.finished(item.duration, processing)
                continue
            delta = joiner.push(item.text)
            if delta:
                texts.append(delta)
                yield render.sse_delta(delta)
            if timed:
                yield render.sse_segment(index, item)
            if speakers is not None:
                heard.append(item)
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


@get("/v1/models", summary="List the models this server may use", operation_class=contract.MODELS)
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
    router = services.transcriber.router
    if router is not None:
        data.append(
            {
                "id": AUTO_MODEL,
                "object": "model",
                "created": 0,
                "owned_by": "stt-appliance",
                "family": AUTO_MODEL,
                "languages": None if "*" in router.routes else sorted(router.routes),
                "translation": bool(router.translators),
                "default": services.settings.engines.model == AUTO_MODEL,
                "state": "loaded" if services.transcriber.is_resident(AUTO_MODEL) else "unloaded",
                "routes": router.routes,
                "detector": router.detector,
            }
        )
    return {"object": "list", "data": data}


ROUTES = [list_models]
