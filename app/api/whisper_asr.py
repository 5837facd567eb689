"""whisper-asr-webservice's API, for Bazarr's `whisperai` provider, subgen and the other tools built for it:

- `POST /asr?task=transcribe|translate&language=xx&output=txt|vtt|srt|tsv|json&encode=true|false&initial_prompt=
  &word_timestamps=&vad_filter=&diarize=` with the audio in the multipart field `audio_file` (`encode=false`: raw
  16 kHz mono s16le, as Bazarr sends what ffmpeg made of a film's audio track) -> the transcript in `output`'s
  format, `text/plain`, `Content-Disposition: attachment; filename="<upload name>.<output>"`, as that service answers.
- `POST /detect-language?encode=` -> `{"detected_language": "english", "language_code": "en", "confidence": 0.98}`.

The model is MODEL (`auto` routes by `language`, or by the language detected). Silero VAD always runs (`vad_filter`
is accepted); `min_speakers`/`max_speakers` are accepted and ignored (the number of speakers is estimated), as are
parameters this API does not know (Bazarr sends `video_file`, a path: never logged). Memory stays bounded: the upload
streams to a temp file, raw PCM is rewritten as WAV in 1 MB blocks, the pipeline decodes a window at a time. Auth:
the API key as a Bearer token or an HTTP Basic password (`http://user:KEY@host:8000` in Bazarr's endpoint).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast, get_args
from urllib.parse import quote

import msgspec
from litestar import Response, get, post
from litestar.openapi.spec import OpenAPIHeader, OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Schema

from app import VERSION
from app.api import contract
from app.api.forms import Form, UploadedFile, read_form
from app.api.jobs import MODEL_HEADER, RequestJob
from app.api.openai import SpeakerStep
from app.api.params import parse_bool
from app.api.requests import AnyRequest
from app.audio.decode import probe_audio
from app.audio.pcm import pcm16_file_as_wav
from app.errors import InvalidInput
from app.render.whisper_asr import OUTPUTS, Output, detected_language, render_output
from app.transcript import Task
from app.transcription.request import TranscriptionRequest

AUDIO_FIELD = "audio_file"
TEXT = "text/plain"  # every output, JSON too, as that service sends it (Litestar adds "; charset=utf-8")
ENGINE_HEADER = "Asr-Engine"
TASKS: tuple[Task, ...] = get_args(Task)


class AsrQuery(msgspec.Struct, frozen=True, kw_only=True):
    task: Task = "transcribe"
    language: str | None = None
    output: Output = "txt"
    encode: bool = True
    initial_prompt: str | None = None
    word_timestamps: bool = False
    diarize: bool = False


def _flag(request: AnyRequest, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    return default if raw is None or not raw.strip() else parse_bool(raw, name)


def parse_query(request: AnyRequest) -> AsrQuery:
    query = request.query_params
    task = (query.get("task") or "transcribe").strip()
    if task not in TASKS:
        raise InvalidInput(f"Invalid task '{task[:20]}': use transcribe or translate", about="task")
    output = (query.get("output") or "txt").strip()
    if output not in OUTPUTS:
        raise InvalidInput(f"Invalid output '{output[:20]}': use one of {', '.join(OUTPUTS)}", about="output")
    return AsrQuery(
        task=cast(Task, task),
        language=(query.get("language") or "").strip() or None,
        output=cast(Output, output),
        encode=_flag(request, "encode", True),
        initial_prompt=query.get("initial_prompt") or None,
        word_timestamps=_flag(request, "word_timestamps", False),
        diarize=_flag(request, "diarize", False) and task == "transcribe",
    )


def _audio_file(form: Form) -> UploadedFile:
    files = form.files_named(AUDIO_FIELD)
    if len(files) != 1:
        raise InvalidInput(f"Send the audio as exactly one '{AUDIO_FIELD}' file part", about="audio")
    return files[0]


async def _read_audio(request: AnyRequest, job: RequestJob, *, encode: bool) -> tuple[Path, str]:
    """The upload as a file the decoder reads (raw PCM wrapped as WAV), and the name the client gave it."""
    job.audio_named(AUDIO_FIELD)
    form = await read_form(request, max_bytes=job.services.settings.limits.max_upload_bytes)
    job.resources.callback(form.close)
    upload = _audio_file(form)
    path = upload.path if encode else await asyncio.to_thread(pcm16_file_as_wav, upload.path)
    await asyncio.to_thread(probe_audio, path, float(job.services.settings.audio.max_audio_seconds))
    return path, upload.filename or AUDIO_FIELD


# The OpenAPI operations of these routes (the contract's helpers; the form is `AsrForm` in app/api/schemas.py).
FLAG = Schema(type=OpenAPIType.BOOLEAN)
STRING = contract.TEXT
ENCODE = contract.query("encode", FLAG, "true (default): audio_file is a media file; false: raw 16 kHz mono s16le PCM")
ASR_PARAMETERS = [
    contract.query("task", contract.ref("AsrTask"), "transcribe (default), or translate into English (multilingual)"),
    contract.query("language", contract.ref("AsrLanguage"), "The spoken language (ISO 639-1); omitted: detected"),
    contract.query("initial_prompt", STRING, "Text the speech continues (Whisper)"),
    contract.query("word_timestamps", FLAG, "JSON segments carry their words with timings"),
    contract.query("vad_filter", FLAG, "Accepted: Silero VAD always runs"),
    contract.query("diarize", FLAG, "Speaker labels: `[A]: ` before each speaker's text, `speaker` in JSON"),
    contract.query("output", Schema(type=OpenAPIType.STRING, enum=list(OUTPUTS)), "txt (default), vtt, srt, tsv, json"),
    ENCODE,
]
ASR = contract.declared(
    {
        "200": OpenAPIResponse(
            description="The transcript as `output` asks (all as text/plain, as whisper-asr-webservice sends them)",
            content={"text/plain": OpenAPIMediaType(schema=STRING)},
            headers={
                **contract.MODEL_USED,
                "Content-Disposition": OpenAPIHeader(
                    schema=STRING, description='`attachment; filename="<upload name>.<output>"`'
                ),
            },
        ),
        **contract.error_responses(contract.UPLOAD_ERRORS),
    },
    body=contract.multipart("AsrForm"),
    parameters=ASR_PARAMETERS,
)
DETECT_LANGUAGE = contract.declared(
    {
        "200": contract.json_ok("DetectedLanguage", "The language of the first speech"),
        **contract.error_responses(contract.UPLOAD_ERRORS),
    },
    body=contract.multipart("AsrForm"),
    parameters=[ENCODE],
)
STATUS = contract.declared(
    {
        "200": OpenAPIResponse(
            description='`{"version": ...}` (Bazarr\'s Test Connection button shows it)',
            content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))},
        )
    },
    public=True,
)


@post("/asr", status_code=200, summary="Transcribe audio (whisper-asr-webservice)", operation_class=ASR)
async def asr(request: AnyRequest) -> Response[str]:
    with RequestJob(request) as job:
        query = parse_query(request)
        transcriber = job.services.transcriber
        words = query.word_timestamps or query.diarize or query.output in ("srt", "vtt")  # ADR 21
        request_ = TranscriptionRequest(
            language=query.language, prompt=query.initial_prompt, task=query.task, words=words
        )
        plan = transcriber.plan(request_)
        job.uses_model(plan.model)
        path, filename = await _read_audio(request, job, encode=query.encode)
        job.admit()
        plan = job.routed(await job.run(transcriber.route(path, plan, job.cancel)))
        transcribed = await job.run(transcriber.transcribe(path, plan, job.cancel))
        transcript, processing = transcribed.transcript, transcribed.processing_seconds
        diarized = None
        if query.diarize:
            speakers = SpeakerStep(job.services.diarizer, path, [], job.cancel)
            by_speaker = await job.run(speakers(list(transcript.segments)))
            diarized, processing = by_speaker.segments, processing + by_speaker.processing_seconds
        job.finished(transcript.duration, processing)
        body = render_output(query.output, transcript, words=query.word_timestamps, diarized=diarized)
        headers = {
            "Content-Disposition": f'attachment; filename="{quote(filename)}.{query.output}"',
            ENGINE_HEADER: "stt-appliance",
            MODEL_HEADER: plan.model,
        }
        return Response(body, media_type=TEXT, headers=headers)


@post(
    "/detect-language",
    status_code=200,
    summary="Detect the language spoken (whisper-asr-webservice)",
    operation_class=DETECT_LANGUAGE,
)
async def detect_language(request: AnyRequest) -> Response[bytes]:
    with RequestJob(request) as job:
        encode = _flag(request, "encode", True)
        transcriber = job.services.transcriber
        job.uses_model(transcriber.detector_name or "none")
        path, _ = await _read_audio(request, job, encode=encode)
        job.admit()
        detection = await job.run(transcriber.detect_language(path, job.cancel))
        job.finished(None, detection.seconds)
        if detection.language is None:
            raise InvalidInput(
                "No speech was found in the audio to detect its language in", about="audio", code="no_speech"
            )
        body = detected_language(detection.language, detection.probability)
        return Response(msgspec.json.encode(body), media_type="application/json")


@get(
    "/status",
    summary="The server's version, for Bazarr's Test Connection button",
    operation_class=STATUS,
)
async def status() -> dict[str, str]:
    """Bazarr's Whisper provider tests its endpoint with GET /status (without the URL's credentials) and shows
    `version`; a 404 reads "Connected but no version found". Public: it carries no content."""
    return {"version": f"stt-appliance {VERSION}"}


ROUTES = [asr, detect_language, status]
