"""POST /v1/audio/transcriptions and /v1/audio/translations: read the multipart form (holding an upload slot), and
answer in the dialect the form is in (ADR 16): Reflector's (`files`/`files[]` or `batch`) or
OpenAI's."""

from __future__ import annotations

from litestar import Response, post
from litestar.response import Stream

from app.api import contract, openai, reflector
from app.api.forms import read_form
from app.api.jobs import RequestJob
from app.api.reflector_params import is_reflector_form
from app.api.requests import AnyRequest
from app.transcript import Task


async def answer_upload(request: AnyRequest, task: Task) -> Response[bytes | str] | Stream:
    with RequestJob(request) as job:
        form = await read_form(request, max_bytes=job.services.settings.limits.max_upload_bytes)
        job.resources.callback(form.close)
        if task == "transcribe" and is_reflector_form(form.fields, [f.field for f in form.files]):
            return await reflector.answer_upload(job, form)
        return await openai.answer_upload(job, form, task)


@post(
    "/v1/audio/transcriptions",
    status_code=200,
    summary="Transcribe audio (OpenAI-compatible; Reflector form too)",
    description=(
        "multipart/form-data: `file`, `model`, `language`, `prompt`, `temperature`, `response_format` (json, text, "
        "verbose_json, srt, vtt, diarized_json), `timestamp_granularities[]`, `stream`, `chunking_strategy` (`auto` "
        'or {"type": "server_vad", "threshold", "prefix_padding_ms", "silence_duration_ms"}, as JSON or as '
        "`chunking_strategy[type]`... keys), and for diarized_json `known_speaker_names[]` with "
        "`known_speaker_references[]` (data URLs of 2-10 s of each voice, up to 4) or names of voices saved in "
        "SPEAKERS_DIR. diarized_json: segments with `speaker` (known names, else A, B, C, ... by first appearance)."
    ),
    operation_class=contract.TRANSCRIPTION,
)
async def create_transcription(request: AnyRequest) -> Response[bytes | str] | Stream:
    return await answer_upload(request, "transcribe")


@post(
    "/v1/audio/translations",
    status_code=200,
    summary="Translate speech into English text (OpenAI-compatible)",
    operation_class=contract.TRANSLATION,
)
async def create_translation(request: AnyRequest) -> Response[bytes | str] | Stream:
    return await answer_upload(request, "translate")


ROUTES = [create_transcription, create_translation]
