"""OpenAI's audio API: answering an OpenAI-form upload (json, text, verbose_json, srt, vtt, diarized_json, or a
stream), and GET /v1/models. The upload routes themselves are in `app/api/transcriptions.py` (they serve
Reflector's form too).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path
from typing import Literal

import msgspec
import structlog
from litestar import Response, get
from litestar.response import Stream

from app import render
from app.api import contract
from app.api.errors import describe, internal_error
from app.api.forms import Form, UploadedFile, decode_data_url
from app.api.jobs import MODEL_HEADER, RequestJob
from app.api.params import (
    KNOWN_REFERENCES,
    TIMED_FORMATS,
    KnownSpeakers,
    Options,
    TranscriptionFields,
    form_fields,
    parse_known_speakers,
    parse_options,
    single_file,
    transcription_request,
)
from app.api.requests import AnyRequest, services_of
from app.api.resume import one_item
from app.api.sse import queue_standing, sse_response
from app.audio.decode import probe_audio
from app.diarization.service import Diarizer
from app.diarization.speakers import KnownVoice, load_known_voices, split_by_speaker
from app.errors import AppError, Cancelled, InvalidInput
from app.model_names import OPENAI_TRANSCRIPTION_MODELS
from app.settings import AUTO_MODEL, ResponseFormat
from app.transcript import DiarizedSegment, Segment, Task, Transcript
from app.transcription.catalog import AutoRouting, OfferedModel
from app.transcription.request import Plan, TranscriptionRequest
from app.transcription.service import RunSummary, Transcribed, Transcriber
from app.worker.cancel import CancelToken
from app.worker.progress import Ticket

log = structlog.get_logger("app.api")
# Litestar appends `; charset=utf-8` to every text/* media type: these carry none of their own (one, not two).
TEXT_MEDIA = {"text": "text/plain", "srt": "text/plain", "vtt": "text/vtt"}


class BySpeaker(msgspec.Struct, frozen=True):
    """A transcription's segments split and labelled by speaker (diarized_json), with the diarizer's time."""

    segments: tuple[DiarizedSegment, ...]
    processing_seconds: float


class DiarizedTranscript(msgspec.Struct, frozen=True):
    transcribed: Transcribed
    by_speaker: BySpeaker


Answer = Transcribed | DiarizedTranscript
StreamItem = Segment | BySpeaker | RunSummary


def render_answer(answer: Answer, options: Options) -> Response[bytes | str]:
    if isinstance(answer, Transcribed):
        return render_transcript(answer.transcript, options)
    return render_transcript(answer.transcribed.transcript, options, answer.by_speaker.segments)


def render_transcript(
    transcript: Transcript, options: Options, by_speaker: Sequence[DiarizedSegment] = ()
) -> Response[bytes | str]:
    """A transcript in the format `options` asks for; diarized_json shows `by_speaker`."""
    match options.response_format:
        case "json":
            return Response(render.render_json(transcript, logprobs=options.logprobs), media_type="application/json")
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
            body = render.render_diarized_json(by_speaker, transcript.duration)
            return Response(body, media_type="application/json")


async def answer_upload(job: RequestJob, form: Form, task: Task) -> Response[bytes | str] | Stream:
    """Validate the OpenAI form and transcribe its file (the job holds the queue slot and the form's files).

    One way down for every format: the request is planned once; the same request retried (same bytes, model,
    parameters) attaches to its running work (issue 14), else new work starts (routed first: MODEL=auto chooses
    the model now, so that a stream's header can name it); the answer is rendered or streamed from that work."""
    services = job.services
    settings = services.settings
    checked = check_upload(form, task, settings.http.default_response_format)
    options, known, upload = checked.options, checked.known, checked.upload
    diarized = options.response_format == "diarized_json"
    plan = services.transcriber.plan(checked.request)
    job.uses_model(plan.model)
    key = form.request_key(f"{task}:openai")
    work = job.resume(key)
    if work is None:
        # Refuse what cannot be decoded (or is declared too long) now, with a plain 400, before queueing or streaming.
        duration = await asyncio.to_thread(probe_audio, upload.path, float(settings.audio.max_audio_seconds))
        voices = await asyncio.to_thread(known_voices, known, settings.speakers.speakers_dir) if known else []
        job.admit()
        ticket = Ticket(duration)  # its place in the queue, its progress
        plan = job.routed(await job.run(services.transcriber.route(upload.path, plan, job.cancel, ticket)))
        cancel = CancelToken()
        speakers = SpeakerStep(services.diarizer, upload.path, voices, cancel) if diarized else None
        items = transcription_work(services.transcriber, upload.path, plan, cancel, options.stream, speakers, ticket)
        work = job.share(key, items, cancel, model=plan.model)
        work.ticket = ticket
    headers = {MODEL_HEADER: work.model}  # the model that transcribed the answer
    if options.stream:
        timed = options.response_format in TIMED_FORMATS and not diarized  # diarized: speaker segments at the end
        events = transcript_events(job, work.follow(), timed=timed, logprobs=options.logprobs)
        return sse_response(
            events,
            keepalive_seconds=settings.http.keepalive_seconds,
            owned=job.hand_over(),
            headers=headers,
            waiting=None if work.ticket is None else queue_standing(services.runner, work.ticket),
        )
    answer: Answer = await job.run(work.result(), on_worker=False)
    transcribed = answer if isinstance(answer, Transcribed) else answer.transcribed
    speaker_seconds = answer.by_speaker.processing_seconds if isinstance(answer, DiarizedTranscript) else 0.0
    job.finished(transcribed.transcript.duration, transcribed.processing_seconds + speaker_seconds)
    response = render_answer(answer, options)
    response.headers.update(headers)
    return response


class CheckedUpload(msgspec.Struct, frozen=True):
    """An OpenAI-form upload whose fields are checked (not its audio yet): what to transcribe and how to answer."""

    upload: UploadedFile
    request: TranscriptionRequest
    options: Options
    known: KnownSpeakers | None  # diarized_json's voices, when the form names some


def check_upload(form: Form, task: Task, default_format: ResponseFormat) -> CheckedUpload:
    """The form's fields converted and checked together (a translation's language, if sent, is not used)."""
    fields = form_fields(form, TranscriptionFields)
    options = parse_options(fields, default_format)
    diarized = options.response_format == "diarized_json"
    if diarized and task == "translate":
        raise InvalidInput("response_format 'diarized_json' is for transcriptions only", about="response_format")
    known = parse_known_speakers(form, fields)
    if known is not None and not diarized:
        raise InvalidInput("known_speaker_names[] needs response_format=diarized_json", about="known_speaker_names")
    upload = single_file(form)
    return CheckedUpload(upload, transcription_request(form, fields, task, options), options, known)


def transcription_work(
    transcriber: Transcriber,
    path: Path,
    plan: Plan,
    cancel: CancelToken,
    stream: bool,
    speakers: SpeakerStep | None,
    ticket: Ticket | None = None,
) -> AsyncIterator[Answer] | AsyncIterator[StreamItem]:
    """The work of one upload as a resumable job's items: one answer, or a stream's segments (then, with
    `speakers`, the segments by speaker) and its summary. `ticket`: its place in the queue and its progress."""
    if not stream:
        return one_item(transcribe_answer(transcriber, path, plan, cancel, speakers, ticket))
    items = transcriber.stream(path, plan, cancel, ticket)
    return items if speakers is None else _with_speakers(items, speakers)


async def transcribe_answer(
    transcriber: Transcriber,
    path: Path,
    plan: Plan,
    cancel: CancelToken,
    speakers: SpeakerStep | None,
    ticket: Ticket | None = None,
) -> Answer:
    """The transcription of `path`, then (with `speakers`) who said what."""
    transcribed = await transcriber.transcribe(path, plan, cancel, ticket)
    if speakers is None:
        return transcribed
    return DiarizedTranscript(transcribed, await speakers(list(transcribed.transcript.segments)))


async def _with_speakers(
    items: AsyncGenerator[Segment | RunSummary], speakers: SpeakerStep
) -> AsyncIterator[StreamItem]:
    heard: list[Segment] = []
    try:
        async for item in items:
            if isinstance(item, RunSummary):
                by_speaker = await speakers(heard)
                yield by_speaker
                processing = item.processing_seconds + by_speaker.processing_seconds
                yield msgspec.structs.replace(item, processing_seconds=processing)
                continue
            heard.append(item)
            yield item
    finally:
        await items.aclose()


def known_voices(known: KnownSpeakers, speakers_dir: Path) -> list[KnownVoice]:
    """The request's known voices: its data URLs (or uploaded files) decoded and checked, or saved voices by name."""
    references = (
        None
        if known.references is None
        else [decode_data_url(f.path, KNOWN_REFERENCES) if f.filename == "" else f.path for f in known.references]
    )
    return load_known_voices(known.names, references, speakers_dir)


class SpeakerStep:
    """Who said what in a finished transcription of `path`: its segments split by speaker and labelled."""

    def __init__(self, diarizer: Diarizer, path: Path, voices: list[KnownVoice], cancel: CancelToken) -> None:
        self.diarizer = diarizer
        self.path = path
        self.voices = voices
        self.cancel = cancel

    async def __call__(self, segments: list[Segment]) -> BySpeaker:
        turns = await self.diarizer.who_spoke(self.path, self.voices, cancel=self.cancel)
        labelled = split_by_speaker(segments, turns.segments, turns.names)
        return BySpeaker(tuple(labelled), turns.processing_seconds)


async def transcript_events(
    job: RequestJob, items: AsyncGenerator[StreamItem], *, timed: bool, logprobs: bool = False
) -> AsyncGenerator[bytes]:
    """A delta per segment (plus a segment event for timed formats), then done and [DONE]; an error event instead
    when the work fails; a hang-up stops the work. Segments by speaker (diarized_json) come as segment events once
    the transcription is done, one per diarized segment, with its speaker. `logprobs`: each delta carries its
    segment's tokens and their log probabilities."""
    joiner = render.DeltaJoiner()
    texts: list[str] = []
    index = 0
    try:
        async for item in items:
            if isinstance(item, BySpeaker):
                for number, segment in enumerate(item.segments):
                    yield render.sse_speaker_segment(number, segment)
                continue
            if isinstance(item, RunSummary):
                yield render.sse_done("".join(texts), render.usage_seconds(item.duration))
                yield render.SSE_DONE
                job.finished(item.duration, item.processing_seconds)
                continue
            delta = joiner.push(item.text)
            if delta:
                texts.append(delta)
                yield render.sse_delta(delta, item.logprobs if logprobs else None)
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
            yield render.sse_error(internal_error(job.request_id).body)
    finally:
        job.cancel.cancel()  # nothing more is read: a job still running stops at its next batch boundary
        await items.aclose()


class ModelObject(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of GET /v1/models: OpenAI's model object, with what this server knows about the model."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    family: str
    languages: list[str] | None  # None: any language
    translation: bool
    default: bool  # MODEL
    state: Literal["loaded", "unloaded"]
    routes: dict[str, str] | msgspec.UnsetType = msgspec.UNSET  # auto only: language (or `*`) -> model
    detector: str | msgspec.UnsetType = msgspec.UNSET  # auto only: the model that detects the language
    alias_of: str | msgspec.UnsetType = msgspec.UNSET  # one of OpenAI's names: it means this model (MODEL)


class ModelList(msgspec.Struct, frozen=True, kw_only=True):
    object: Literal["list"]
    data: list[ModelObject]


def model_object(model: OfferedModel, auto: AutoRouting | None) -> ModelObject:
    """The catalog's entry as OpenAI's model object; `auto` also shows its routes and detector."""
    routing = auto if model.name == AUTO_MODEL else None
    return ModelObject(
        id=model.name,
        object="model",
        created=0,
        owned_by=model.owned_by,
        family=model.family,
        languages=None if model.languages is None else list(model.languages),
        translation=model.can_translate,
        default=model.default,
        state="loaded" if model.resident else "unloaded",
        routes=msgspec.UNSET if routing is None else routing.routes,
        detector=msgspec.UNSET if routing is None else routing.detector,
    )


@get(
    "/v1/models",
    summary="List the models this server may use",
    response_description="The models a request may name",
    operation_class=contract.MODELS,
)
async def list_models(request: AnyRequest) -> ModelList:
    catalog = services_of(request).catalog
    auto = catalog.auto()
    data = [model_object(model, auto) for model in catalog.models()]
    # OpenAI's model names mean MODEL here (app/model_names.py): each is listed as an alias of MODEL's entry.
    default = model_object(catalog.default(), auto)
    data += [msgspec.structs.replace(default, id=name, alias_of=default.id) for name in OPENAI_TRANSCRIPTION_MODELS]
    return ModelList(object="list", data=data)


ROUTES = [list_models]
