"""Reflector's GPU Model API (seed 002): the routes Reflector's TRANSCRIPT_URL, DIARIZATION_URL and TRANSLATION_URL
(TRANSLATE_URL in some Reflector versions) can point at unchanged.

- `POST /v1/audio/transcriptions` in Reflector's form (`files`/`files[]` or `batch`): `answer_upload`, called by
  `app/api/transcriptions.py` once it holds the queue slot and has read the form.
- `POST /v1/audio/transcriptions-from-url`: JSON `{audio_file_url, model?, language?, timestamp_offset?}`.
- `POST /diarize?audio_file_url=...&timestamp=...`
- `POST /translate?text=...` with source_language/target_language in the query string or a JSON body.

Each route holds an upload slot while its body is read and its audio downloaded (into a private request directory
that is removed on every path), then a queue slot (503 when either is full); it validates, runs all model work on
the worker through a service, and renders with `app.render.reflector`. A client hang-up cancels the job (or the
download) and is logged as 499; the URL transcription waits RESUME_GRACE_SECONDS for Reflector's retry first
(`app/api/resume.py`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import msgspec
from litestar import Response, post
from litestar.params import Parameter

from app.api import contract
from app.api.deps import Services
from app.api.forms import Form, body_chunks
from app.api.jobs import MODEL_HEADER, RequestJob
from app.api.reflector_params import (
    LANGUAGE_CODE,
    REFLECTOR_DEFAULT_MODELS,
    FromUrlBody,
    TranslateBody,
    finite,
    language_code,
    plan_upload,
    read_json,
    required_text,
)
from app.api.requests import AnyRequest
from app.api.resume import one_item, request_key
from app.api.tempfiles import request_workdir
from app.api.url_fetch import HTTP_URL_PATTERN, fetch_to_tempfile
from app.audio.decode import probe_audio
from app.diarization.diarize import DiarizationSegment
from app.errors import InvalidInput
from app.render.reflector import TranslatedText, reflector_transcript, render_transcript, render_upload
from app.settings import AUTO_MODEL
from app.transcription.request import Plan, TranscriptionRequest
from app.worker.cancel import CancelToken
from app.worker.progress import Ticket

JSON = "application/json"


class DiarizationBody(msgspec.Struct, frozen=True):
    diarization: tuple[DiarizationSegment, ...]


def reflector_plan(services: Services, model: str | None, language: str | None) -> Plan:
    """Model: Reflector's default names map to MODEL unless allowed by name. Language: omitted means "en" (seed
    002) when the model knows English, else the model's own language (a Russian-only GigaAM server still works)."""
    name = (model or "").strip()
    if name in REFLECTOR_DEFAULT_MODELS and name not in services.settings.engines.allowed_models:
        name = ""
    transcriber = services.transcriber
    resolved = transcriber.resolve_name(name or None)
    requested = (language or "").strip()
    # MODEL=auto detects an omitted language instead (ADR 16's "en" was for a model that needs one)
    if not requested and resolved != AUTO_MODEL and transcriber.model_info(resolved).supports("en"):
        requested = "en"
    return transcriber.plan(TranscriptionRequest(model=resolved, language=requested or None))


async def fetch_audio(job: RequestJob, url: str, workdir: Path) -> tuple[Path, float | None]:
    """Download into `workdir` (a hang-up abandons the download) and check the file decodes: (path, declared s).

    Call it before `job.admit()`: a download is the request's upload, holding an upload slot and no queue slot (a
    slow source must not keep jobs that are ready from running), at the pace every upload keeps."""
    limits = job.services.settings.limits
    download = fetch_to_tempfile(
        url,
        max_bytes=limits.max_upload_bytes,
        timeout_s=limits.url_timeout_seconds,
        allow_private=limits.allow_private_urls,
        dest_dir=workdir,
        min_bytes_per_second=limits.upload_min_bytes_per_second,
        pace_window_seconds=limits.upload_idle_timeout_seconds,
    )
    path = await job.run(download, on_worker=False)
    duration = await asyncio.to_thread(probe_audio, path, float(job.services.settings.audio.max_audio_seconds))
    return path, duration


async def answer_upload(job: RequestJob, form: Form) -> Response[bytes | str]:
    """Reflector's multipart form: `file`, or `files`/`files[]` (+ `batch`); the job holds the slot and the form."""
    job.admit()
    upload_plan = plan_upload(form.fields, [f.field for f in form.files])
    plan = reflector_plan(job.services, upload_plan.model, form.first("language"))
    job.uses_model(plan.model)
    files = [form.files[i] for i in upload_plan.file_indices]
    limit = float(job.services.settings.audio.max_audio_seconds)
    durations = [await asyncio.to_thread(probe_audio, u.path, limit) for u in files]  # all decode before any queues
    results = []
    models: list[str] = []  # with MODEL=auto, each file is routed by its own language
    audio = processing = 0.0
    transcriber = job.services.transcriber
    for upload, duration in zip(files, durations, strict=True):
        ticket = Ticket(duration)
        routed = job.routed(await job.run(transcriber.route(upload.path, plan, job.cancel, ticket)))
        transcribed = await job.run(transcriber.transcribe(upload.path, routed, job.cancel, ticket))
        results.append(reflector_transcript(transcribed.transcript.words, filename=upload.filename))
        models.append(routed.model)
        audio += transcribed.transcript.duration
        processing += transcribed.processing_seconds
    job.finished(audio, processing)
    model_names = ",".join(dict.fromkeys(models))
    job.uses_model(model_names)
    return Response(
        render_upload(results, multiple=upload_plan.multiple), media_type=JSON, headers={MODEL_HEADER: model_names}
    )


@post(
    "/v1/audio/transcriptions-from-url",
    status_code=200,
    summary="Transcribe audio at a URL (Reflector)",
    operation_class=contract.FROM_URL,
)
async def transcriptions_from_url(request: AnyRequest) -> Response[bytes]:
    with RequestJob(request) as job:
        job.audio_from_url()
        body = await read_json(request, FromUrlBody, required="audio_file_url") or FromUrlBody()
        url = required_text(body.audio_file_url, "audio_file_url")
        plan = reflector_plan(job.services, body.model, body.language)
        job.uses_model(plan.model)
        offset = finite(body.timestamp_offset or 0.0, "timestamp_offset")
        # Reflector retries too: the same URL, model and language attach to the running job (the offset only shifts
        # the rendering of each answer), without downloading again.
        fields = {"audio_file_url": [url], "model": [plan.model], "language": [plan.decoding.language or ""]}
        key = request_key("transcribe:reflector-url", fields, [])
        shared = job.resume(key)
        if shared is None:
            workdir = job.resources.enter_context(request_workdir())
            path, duration = await fetch_audio(job, url, workdir)
            job.admit()
            transcriber = job.services.transcriber
            ticket = Ticket(duration)
            plan = job.routed(await job.run(transcriber.route(path, plan, job.cancel, ticket)))
            cancel = CancelToken()
            work = one_item(transcriber.transcribe(path, plan, cancel, ticket))
            shared = job.share(key, work, cancel, model=plan.model)
        transcribed = await job.run(shared.result(), on_worker=False)
        job.finished(transcribed.transcript.duration, transcribed.processing_seconds)
        result = reflector_transcript(transcribed.transcript.words, timestamp_offset=offset)
        return Response(render_transcript(result), media_type=JSON, headers={MODEL_HEADER: shared.model})


AudioUrl = Annotated[str, Parameter(description="The audio's http(s) URL", pattern=HTTP_URL_PATTERN)]
Seconds = Annotated[float, Parameter(description="Seconds added to every time")]
LanguageCode = Annotated[
    str | None, Parameter(description="ISO 639-1 (or -3) code (or in the JSON body)", pattern=LANGUAGE_CODE.pattern)
]


@post(
    "/diarize",
    status_code=200,
    summary="Who spoke when in audio at a URL (Reflector)",
    response_description="Who spoke when",
    operation_class=contract.DIARIZE,
)
async def diarize_url(request: AnyRequest, audio_file_url: AudioUrl, timestamp: Seconds = 0.0) -> DiarizationBody:
    with RequestJob(request) as job:
        job.audio_from_url()
        url = required_text(audio_file_url, "audio_file_url")
        offset = finite(timestamp, "timestamp")
        job.uses_model("diarization")
        async for _ in body_chunks(request):  # nothing is expected; read it so that a hang-up is seen
            pass
        with request_workdir() as workdir:
            path, duration = await fetch_audio(job, url, workdir)
            job.admit()
            result = await job.run(job.services.diarizer.diarize(path, offset=offset, cancel=job.cancel))
        job.finished(duration, result.processing_seconds)
        return DiarizationBody(result.segments)


@post(
    "/translate",
    status_code=200,
    summary="Translate text (Reflector)",
    response_description="The text in both languages",
    operation_class=contract.TRANSLATE,
)
async def translate_text(
    request: AnyRequest,
    text: Annotated[str | None, Parameter(description="The text (or in the JSON body)")] = None,
    source_language: LanguageCode = None,
    target_language: LanguageCode = None,
) -> TranslatedText:
    with RequestJob(request) as job:
        body = await read_json(request, TranslateBody, required=None) or TranslateBody()
        text = body.text if text is None else text
        if text is None:
            raise InvalidInput("Missing required parameter: 'text'", about="text")
        source = language_code(source_language or body.source_language, "source_language")
        target = language_code(target_language or body.target_language, "target_language")
        if source == target:  # nothing to translate: Reflector reads text[target]
            return TranslatedText({source: text})
        job.admit()
        result = await job.run(job.services.translator.translate(text, source, target, job.cancel))
        job.uses_model(result.model)
        job.finished(None, result.processing_seconds)
        return TranslatedText({source: text, target: result.text})


ROUTES = [transcriptions_from_url, diarize_url, translate_text]
