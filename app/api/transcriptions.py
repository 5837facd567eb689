"""POST /v1/audio/transcriptions and /v1/audio/translations: read the multipart form (holding an upload slot), and
answer in the dialect the form is in (ADR 16): Reflector's (`files`/`files[]` or `batch`) or
OpenAI's."""

from __future__ import annotations

from litestar import Response, post
from litestar.response import Stream

from app.api import openai, reflector
from app.api.forms import read_form
from app.api.jobs import RequestJob
from app.api.params import is_reflector_form
from app.api.requests import AnyRequest
from app.transcript import Task


async def answer_upload(request: AnyRequest, task: Task) -> Response[bytes | str] | Stream:
    with RequestJob(request) as job:
        form = await read_form(request, max_bytes=job.services.settings.limits.max_upload_bytes)
        job.resources.callback(form.close)
        if task == "transcribe" and is_reflector_form(form.fields, [f.field for f in form.files]):
            return await reflector.answer_upload(job, form)
        return await openai.answer_upload(job, form, task)


@post("/v1/audio/transcriptions", status_code=200, summary="Transcribe audio (OpenAI-compatible; Reflector form too)")
async def create_transcription(request: AnyRequest) -> Response[bytes | str] | Stream:
    return await answer_upload(request, "transcribe")


@post("/v1/audio/translations", status_code=200, summary="Translate speech into English text (OpenAI-compatible)")
async def create_translation(request: AnyRequest) -> Response[bytes | str] | Stream:
    return await answer_upload(request, "translate")


ROUTES = [create_transcription, create_translation]
