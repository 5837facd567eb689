"""Reflector's GPU Model API (seed 002): the routes Reflector's TRANSCRIPT_URL, DIARIZATION_URL and TRANSLATION_URL
(TRANSLATE_URL in some Reflector versions) can point at unchanged.

- `POST /v1/audio/transcriptions` in Reflector's form (`files`/`files[]` or `batch`): `reflector_upload`, called by
  the OpenAI route after it has taken the queue slot and read the form.
- `POST /v1/audio/transcriptions-from-url`: JSON `{audio_file_url, model?, language?, timestamp_offset?}`.
- `POST /diarize?audio_file_url=...&timestamp=...`
- `POST /translate?text=...` with source_language/target_language in the query string or a JSON body.

Routes stay thin: each takes a queue slot first (503 when full), validates, downloads into a private request
directory that is removed on every path, runs all model work on the Runner's worker, and renders with
`app.render.reflector`. A client hang-up cancels the job (or the download) and is logged as 499.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TypeVar

import msgspec
from litestar import Response, post

from app.api.context import AnyRequest, ClientGone, record_of, services_of, until_disconnect
from app.api.deps import Services
from app.api.forms import Form
from app.api.tempfiles import request_workdir
from app.api.url_fetch import fetch_to_tempfile
from app.audio.decode import probe_audio
from app.diarization.diarize import DiarizationSegment, diarize
from app.errors import InputTooLarge, InvalidInput
from app.render.reflector import plan_upload, reflector_transcript, render_transcript, render_upload
from app.transcript import Transcript
from app.transcription.service import Job, RunSummary
from app.worker.cancel import CancelToken

S = TypeVar("S", bound=msgspec.Struct)
JSON = "application/json"
MAX_JSON_BYTES = 256 * 1024
# Model names Reflector sends that mean "this server's model" unless an operator allowed that exact name.
REFLECTOR_DEFAULT_MODELS = frozenset({"nvidia/parakeet-tdt-0.6b-v2", "nvidia/parakeet-tdt-0.6b-v3", "whisper-1"})


class FromUrlBody(msgspec.Struct, kw_only=True):
    """Unknown keys (Reflector sends `batch`) are ignored."""

    audio_file_url: str | None = None
    model: str | None = None
    language: str | None = None
    timestamp_offset: float | None = None


class TranslateBody(msgspec.Struct, kw_only=True):
    text: str | None = None
    source_language: str | None = None
    target_language: str | None = None


class Diarization(msgspec.Struct, frozen=True):
    diarization: tuple[DiarizationSegment, ...]


# --- helpers ----------------------------------------------------------------------------------------------------


def reflector_job(services: Services, model: str | None, language: str | None) -> Job:
    """Model: Reflector's default names map to MODEL unless allowed by name. Language: omitted means "en" (seed
    002) when the model knows English, else the model's own language (a Russian-only GigaAM server still works)."""
    name = (model or "").strip()
    if name in REFLECTOR_DEFAULT_MODELS and name not in services.settings.allowed_models:
        name = ""
    info = services.transcriber.resolve_model(name or None)
    requested = (language or "").strip()
    if not requested and info.supports("en"):
        requested = "en"
    return services.transcriber.job(info.name, requested or None, None, "transcribe")


async def read_json(request: AnyRequest, kind: type[S], *, required: bool) -> S | None:
    """A small JSON object body decoded into `kind`; None when the body is empty and not required."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise InputTooLarge(f"The JSON body is larger than {MAX_JSON_BYTES // 1024} KB")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if required:
            raise InvalidInput("Expected a JSON body with 'audio_file_url'", about="audio")
        return None
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        param = str(exc).rsplit("$.", 1)[1].rstrip("`") if "$." in str(exc) else None
        raise InvalidInput(f"Invalid JSON body: {exc}", about=param) from None
    except msgspec.DecodeError:
        raise InvalidInput("The request body is not valid JSON") from None


def _audio_from_url(request: AnyRequest) -> None:
    """Errors about this request's audio name `audio_file_url`."""
    record = record_of(request.scope)
    if record is not None:
        record.audio_field = "audio_file_url"


def _gone(request: AnyRequest, services: Services) -> None:
    record = record_of(request.scope)
    if record is not None:
        record.status_override = 499
    services.cancelled()


def _note(
    request: AnyRequest, *, model: str | None = None, audio: float | None = None, seconds: float | None = None
) -> None:
    record = record_of(request.scope)
    if record is None:
        return
    if model is not None:
        record.model = model
    if audio is not None:
        record.audio_seconds = audio
    if seconds is not None:
        record.processing_seconds = seconds


async def _fetch(request: AnyRequest, services: Services, url: str, workdir: Path) -> tuple[Path, float | None]:
    """Download into `workdir` (a hang-up abandons the download) and check the file decodes: (path, declared s)."""
    settings = services.settings
    download = fetch_to_tempfile(
        url,
        max_bytes=settings.max_upload_bytes,
        timeout_s=settings.url_timeout_seconds,
        allow_private=settings.allow_private_urls,
        dest_dir=workdir,
    )
    path = await until_disconnect(request, download, None)
    duration = await asyncio.to_thread(probe_audio, path, float(settings.max_audio_seconds))
    return path, duration


async def _transcribe(
    request: AnyRequest, services: Services, path: Path, job: Job, cancel: CancelToken
) -> tuple[Transcript, RunSummary]:
    return await until_disconnect(request, services.transcriber.transcribe(path, job, cancel), cancel)


def _url_param(value: str | None) -> str:
    url = (value or "").strip()
    if not url:
        raise InvalidInput("Missing required parameter: 'audio_file_url'", about="audio")
    return url


# --- routes -----------------------------------------------------------------------------------------------------


async def reflector_upload(request: AnyRequest, services: Services, form: Form) -> Response[bytes | str]:
    """Reflector's multipart form: `file`, or `files`/`files[]` (+ `batch`); the caller holds the slot and the form."""
    plan = plan_upload(form.fields, [f.field for f in form.files])
    job = reflector_job(services, plan.model, form.first("language"))
    _note(request, model=job.model)
    files = [form.files[i] for i in plan.file_indices]
    for upload in files:  # every file must decode before any is queued
        await asyncio.to_thread(probe_audio, upload.path, float(services.settings.max_audio_seconds))
    cancel = CancelToken()
    results = []
    audio = processing = 0.0
    try:
        for upload in files:
            transcript, summary = await _transcribe(request, services, upload.path, job, cancel)
            results.append(reflector_transcript(transcript.words, filename=upload.filename))
            audio += summary.duration
            processing += summary.processing_seconds
    except ClientGone:
        _gone(request, services)
        raise
    _note(request, audio=audio, seconds=processing)
    response: Response[bytes | str] = Response(render_upload(plan, results), media_type=JSON)
    return response


@post("/v1/audio/transcriptions-from-url", status_code=200, summary="Transcribe audio at a URL (Reflector)")
async def transcriptions_from_url(request: AnyRequest) -> Response[bytes]:
    services = services_of(request)
    _audio_from_url(request)
    with services.runner.admission():
        body = await read_json(request, FromUrlBody, required=True) or FromUrlBody()
        url = _url_param(body.audio_file_url)
        job = reflector_job(services, body.model, body.language)
        _note(request, model=job.model)
        offset = body.timestamp_offset or 0.0
        cancel = CancelToken()
        with request_workdir() as workdir:
            try:
                path, _ = await _fetch(request, services, url, workdir)
                transcript, summary = await _transcribe(request, services, path, job, cancel)
            except ClientGone:
                _gone(request, services)
                raise
        _note(request, audio=summary.duration, seconds=summary.processing_seconds)
        result = reflector_transcript(transcript.words, timestamp_offset=offset)
        return Response(render_transcript(result), media_type=JSON)


def _float_param(request: AnyRequest, name: str) -> float:
    raw = request.query_params.get(name)
    if raw is None or not raw.strip():
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"Invalid value for '{name}': expected a number, got '{raw}'", about=name) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(f"'{name}' must be a finite number", about=name)
    return value


@post("/diarize", status_code=200, summary="Who spoke when in audio at a URL (Reflector)")
async def diarize_url(request: AnyRequest) -> Response[bytes]:
    services = services_of(request)
    settings = services.settings
    _audio_from_url(request)
    with services.runner.admission():
        url = _url_param(request.query_params.get("audio_file_url"))
        offset = _float_param(request, "timestamp")
        _note(request, model="diarization")
        cancel = CancelToken()

        def work(path: Path) -> tuple[list[DiarizationSegment], float]:
            started = time.monotonic()
            segments = diarize(path, offset=offset, num_threads=settings.num_threads, cancel=cancel)
            return segments, time.monotonic() - started

        with request_workdir() as workdir:
            try:
                await request.body()  # nothing is expected; read it so that a hang-up is seen
                path, duration = await _fetch(request, services, url, workdir)
                job = services.runner.run(lambda: work(path), cancel)
                segments, seconds = await until_disconnect(request, job, cancel)
            except ClientGone:
                _gone(request, services)
                raise
        _note(request, audio=duration, seconds=seconds)
        return Response(msgspec.json.encode(Diarization(tuple(segments))), media_type=JSON)


def _language(value: str | None, param: str) -> str:
    code = (value or "").strip().lower()
    if not code:
        raise InvalidInput(f"Missing required parameter: '{param}'", about=param)
    return code


@post("/translate", status_code=200, summary="Translate text (Reflector)")
async def translate_text(request: AnyRequest) -> Response[bytes]:
    services = services_of(request)
    with services.runner.admission():
        body = await read_json(request, TranslateBody, required=False) or TranslateBody()
        query = request.query_params
        raw_text = query.get("text", body.text)
        if raw_text is None:
            raise InvalidInput("Missing required parameter: 'text'", about="text")
        text: str = raw_text
        source = _language(query.get("source_language") or body.source_language, "source_language")
        target = _language(query.get("target_language") or body.target_language, "target_language")
        if source == target:  # nothing to translate: Reflector reads text[target]
            return Response(msgspec.json.encode({"text": {source: text}}), media_type=JSON)
        translator = services.translator()
        cancel = CancelToken()

        def work() -> tuple[str, str, float]:
            started = time.monotonic()
            model = translator.resolve(source, target).name
            return model, translator.translate(text, source, target), time.monotonic() - started

        try:
            model, translated, seconds = await until_disconnect(request, services.runner.run(work, cancel), cancel)
        except ClientGone:
            _gone(request, services)
            raise
        _note(request, model=model, seconds=seconds)
        return Response(msgspec.json.encode({"text": {source: text, target: translated}}), media_type=JSON)


ROUTES = [transcriptions_from_url, diarize_url, translate_text]
