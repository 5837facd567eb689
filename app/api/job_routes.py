"""Jobs you can leave (issue 23): submit a file, get its id at once, come back for the result in any format.

- `POST /v1/jobs`: the form of /v1/audio/transcriptions (OpenAI's fields, no `stream`) plus `task` (transcribe |
  translate). The upload is read and checked as the synchronous route checks it, queued, and answered 202 with
  `Location: /v1/jobs/{id}` and the job. Its work runs in the one FIFO with every other request (`app/worker/`).
- `GET /v1/jobs/{id}`: status, progress, place in the queue, estimated seconds until done, error.
- `GET /v1/jobs/{id}/result?response_format=...`: rendered when fetched from the one stored transcript. Jobs
  always compute word timings (ADR 55), so every format is there and the timed ones equal the synchronous route's.
- `DELETE /v1/jobs/{id}`: cancels a queued or running job (its work stops at its next batch boundary, its audio goes
  at once), or forgets a finished one. `GET /v1/jobs`: the queue, the jobs held newest first, each with its id only
  as logs show it (the whole id is its submitter's: a list handing ids out would make them guessable by anyone).

Held in memory only (`app/job_store.py`); logs name a job by `short_id`, never by its whole id.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated

import msgspec
import structlog
from litestar import Response, delete, get, post
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Schema
from litestar.params import FromPath, FromQuery, QueryParameter

from app.api import contract
from app.api.deps import Services
from app.api.errors import Unauthorized, describe, internal_error
from app.api.forms import read_form
from app.api.jobs import MODEL_HEADER, RequestJob
from app.api.openai import SpeakerStep, check_upload, known_voices, render_transcript, transcribe_answer
from app.api.params import Granularity, Options
from app.api.requests import AnyRequest, record_of, services_of
from app.audio.decode import probe_audio
from app.diarization.speakers import KnownVoice
from app.errors import AppError, Cancelled, InvalidInput, JobUnfinished, UnknownJob
from app.job_store import ID_PREFIX, HeldJob, JobResult, Outcome, short_id
from app.render import verbose_flags
from app.render.jobs import Job, JobDeleted, JobError, JobList, JobState, JobSummary
from app.render.sse import ErrorBody
from app.settings import ResponseFormat
from app.transcript import Task
from app.transcription.request import Plan
from app.transcription.service import Transcribed
from app.worker.progress import Ticket
from app.worker.runner import Runner

log = structlog.get_logger("app.jobs")
JOBS_PATH = "/v1/jobs"
JOB_ID = re.compile(ID_PREFIX + r"[A-Za-z0-9_-]{16,64}")

# The contract: Litestar infers the parameters and answers (Structs of app/render/jobs.py); the form, the result's
# media types and the error statuses are declared.
JOB_ERRORS = (InvalidInput, Unauthorized, UnknownJob)
SUBMIT = contract.declared(contract.error_responses(contract.UPLOAD_ERRORS), body=contract.multipart("JobForm"))
LIST = contract.declared(contract.error_responses([InvalidInput, Unauthorized]))
ONE = contract.declared(contract.error_responses(JOB_ERRORS))
RESULT = contract.declared(
    {
        "200": OpenAPIResponse(
            description=(
                "`json` (JsonBody), `verbose_json` (VerboseBody), `diarized_json` (DiarizedBody); `text` and `srt` as "
                "text/plain, `vtt` as text/vtt"
            ),
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(any_of=[contract.ref(shape) for shape in ("JsonBody", "VerboseBody", "DiarizedBody")])
                ),
                "text/plain": OpenAPIMediaType(schema=contract.TEXT),
                "text/vtt": OpenAPIMediaType(schema=contract.TEXT),
            },
            headers=contract.MODEL_USED,
        ),
        **contract.error_responses([*JOB_ERRORS, JobUnfinished]),
    }
)


def job_state(job: HeldJob, runner: Runner) -> JobState:
    """Where the job stands now."""
    status = job.status
    ticket = job.ticket
    standing = runner.standing(ticket) if status in ("queued", "running") else None
    duration = job.result.transcript.duration if job.result is not None else ticket.audio_seconds
    eta = None if standing is None or standing.eta_seconds is None else round(standing.eta_seconds, 1)
    return JobState(
        status=status,
        task=job.task,
        model=job.model,
        created_at=int(job.created_at),
        started_at=_unix(job.started_at),
        finished_at=_unix(job.finished_at),
        expires_at=_unix(job.expires_at),
        duration=None if duration is None else round(duration, 3),
        progress=1.0 if status == "succeeded" else _rounded(ticket.fraction),
        position=None if standing is None else standing.position,
        eta_seconds=eta,
    )


def job_body(job: HeldJob, runner: Runner) -> Job:
    """The job as its submitter (who has its id) sees it."""
    error = None if job.error is None else JobError(**msgspec.structs.asdict(job.error))
    state = msgspec.structs.asdict(job_state(job, runner))
    return Job(**state, id=job.id, response_format=job.response_format, error=error)


def job_summary(job: HeldJob, runner: Runner) -> JobSummary:
    """The job as the queue shows it to everyone: no whole id."""
    return JobSummary(**msgspec.structs.asdict(job_state(job, runner)), short_id=job.short_id)


def _unix(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds)


def _rounded(fraction: float | None) -> float | None:
    return None if fraction is None else round(fraction, 4)


def _task(value: str | None) -> Task:
    if value is None or value == "" or value == "transcribe":
        return "transcribe"
    if value == "translate":
        return "translate"
    raise InvalidInput(f"Invalid form field 'task': expected transcribe or translate, got '{value[:40]}'", about="task")


def _named(request: AnyRequest, job_id: str) -> None:
    """The request's log line names the job by its short id (an id not of our making: `other`, never as sent)."""
    record = record_of(request.scope)
    if record is not None:
        record.job = short_id(job_id) if JOB_ID.fullmatch(job_id) else "other"


@post(
    JOBS_PATH,
    status_code=202,
    summary="Submit audio as a job: answered at once, transcribed in the queue, fetched later",
    description=(
        "The multipart form of POST /v1/audio/transcriptions (OpenAI's fields; not `stream`) plus `task`: "
        "`transcribe` (default) or `translate`. `response_format` is the result's default format; "
        "`diarized_json` also finds the speakers (with `known_speaker_names[]` and references as there). Answered "
        "202 with `Location: /v1/jobs/{id}`. Results are held in memory only, JOBS_TTL_SECONDS after they finish."
    ),
    operation_class=SUBMIT,
)
async def create_job(request: AnyRequest) -> Response[Job]:
    services = services_of(request)
    settings = services.settings
    with RequestJob(request) as job, services.jobs.reserving() as place:
        form = await read_form(request, max_bytes=settings.limits.max_upload_bytes)
        job.resources.callback(form.close)
        task = _task(form.first("task"))
        checked = check_upload(form, task, settings.http.default_response_format)
        if checked.options.stream:
            raise InvalidInput("A job is not streamed: poll GET /v1/jobs/{id} for its progress", about="stream")
        diarized = checked.options.response_format == "diarized_json"
        # Every format is rendered when fetched, so a job always computes word timings (ADR 55).
        plan = services.transcriber.plan(msgspec.structs.replace(checked.request, words=True))
        job.uses_model(plan.model)
        path = checked.upload.path
        duration = await asyncio.to_thread(probe_audio, path, float(settings.audio.max_audio_seconds))
        known = checked.known
        voices = await asyncio.to_thread(known_voices, known, settings.speakers.speakers_dir) if known else []
        job.admit()  # a queue slot, as every request's (MAX_QUEUE), until its work ends
        held = place.hold(
            task=task,
            model=plan.model,
            response_format=checked.options.response_format,
            diarized=diarized,
            ticket=Ticket(duration),
            owned=job.hand_over(),  # its queue slot and its audio, released when its work ends
        )
        _named(request, held.id)
        services.jobs.start(run_job(services, held, path, plan, voices))
        location = f"{JOBS_PATH}/{held.id}"
        return Response(job_body(held, services.runner), status_code=202, headers={"Location": location})


async def run_job(services: Services, job: HeldJob, path: Path, plan: Plan, voices: list[KnownVoice]) -> None:
    """A job's work, in the queue like every request's; its audio goes before its status says it finished."""
    transcriber = services.transcriber
    outcome: Outcome = "failed"
    result: JobResult | None = None
    error: ErrorBody | None = None
    try:
        plan = await transcriber.route(path, plan, job.cancel, job.ticket)
        job.model = plan.model
        speakers = SpeakerStep(services.diarizer, path, voices, job.cancel) if job.diarized else None
        answer = await transcribe_answer(transcriber, path, plan, job.cancel, speakers, job.ticket)
        if isinstance(answer, Transcribed):
            result = JobResult(answer.transcript, None, answer.processing_seconds)
        else:
            seconds = answer.transcribed.processing_seconds + answer.by_speaker.processing_seconds
            result = JobResult(answer.transcribed.transcript, answer.by_speaker.segments, seconds)
        outcome = "succeeded"
    except Cancelled:
        outcome = "cancelled"
    except AppError as exc:
        error = describe(exc).body
    except Exception as exc:
        log.error("job_error", job=job.short_id, error_type=type(exc).__name__, exc_info=exc)
        error = internal_error(job.short_id).body
    finally:
        job.release()
    services.jobs.finish(job, outcome, result=result, error=error)
    audio = None if result is None else round(result.transcript.duration, 2)
    processing = None if result is None else round(result.processing_seconds, 3)
    fields = {
        "job": job.short_id,
        "status": job.status,
        "model": job.model,
        "audio_seconds": audio,
        "processing_seconds": processing,
        "rtf": round(processing / audio, 4) if audio and processing else None,
        "error": None if error is None else error.code,
    }
    log.info("job_finished", **{k: v for k, v in fields.items() if v is not None})
    services.metrics.job_finished(job.status, audio or 0.0, processing or 0.0)


@get(
    JOBS_PATH,
    summary="The queue: the jobs held, newest first",
    description=(
        "Every job held, with its status, progress, place in the queue and ETA, and its id only as logs show it "
        "(`short_id`): the whole id, the only way to a job's result, is given to its submitter alone."
    ),
    operation_class=LIST,
)
async def list_jobs(request: AnyRequest) -> JobList:
    services = services_of(request)
    return JobList(data=[job_summary(job, services.runner) for job in services.jobs.jobs()])


@get(
    f"{JOBS_PATH}/{{job_id:str}}",
    summary="A job's status, progress and place in the queue",
    operation_class=ONE,
)
async def get_job(request: AnyRequest, job_id: FromPath[str]) -> Job:
    services = services_of(request)
    _named(request, job_id)
    return job_body(services.jobs.get(job_id), services.runner)


@get(
    f"{JOBS_PATH}/{{job_id:str}}/result",
    summary="A finished job's result, in any format",
    description=(
        "Rendered now from the job's one transcript: `response_format` json, text, verbose_json (with "
        "`timestamp_granularities[]` word and/or segment), srt, vtt, or diarized_json for a job submitted with it. "
        "Default: the job's own `response_format`."
    ),
    operation_class=RESULT,
)
async def get_job_result(
    request: AnyRequest,
    job_id: FromPath[str],
    response_format: FromQuery[ResponseFormat | None] = None,
    granularities: Annotated[list[Granularity] | None, QueryParameter(name="timestamp_granularities[]")] = None,
) -> Response[bytes | str]:
    services = services_of(request)
    _named(request, job_id)
    job = services.jobs.get(job_id)
    result = job.result
    if result is None:
        message, code = _why_no_result(job)
        raise JobUnfinished(message, about="job_id", code=code)
    chosen = response_format or job.response_format
    if chosen == "diarized_json" and result.speakers is None:
        raise InvalidInput(
            "This job did not find speakers: submit it with response_format=diarized_json", about="response_format"
        )
    words, segments = verbose_flags(granularities or ())
    options = Options(response_format=chosen, words=words, segments=segments, stream=False)
    response = render_transcript(result.transcript, options, result.speakers or ())
    response.headers[MODEL_HEADER] = job.model
    return response


def _why_no_result(job: HeldJob) -> tuple[str, str]:
    match job.status:
        case "failed":
            return f"The job failed: {job.error.message if job.error else 'unknown error'}", "job_failed"
        case "cancelled":
            return "The job was cancelled: it has no result", "job_cancelled"
        case status:
            return f"The job is {status}: poll GET /v1/jobs/{{id}} until its status is succeeded", "job_not_finished"


@delete(
    f"{JOBS_PATH}/{{job_id:str}}",
    status_code=200,
    summary="Cancel a queued or running job, or forget a finished one",
    operation_class=ONE,
)
async def delete_job(request: AnyRequest, job_id: FromPath[str]) -> Job | JobDeleted:
    services = services_of(request)
    _named(request, job_id)
    job = services.jobs.get(job_id, fetched=False)
    if job.outcome is None:
        services.jobs.cancel(job)  # stops at its next batch boundary; its audio is gone already
        return job_body(job, services.runner)
    services.jobs.forget(job)
    return JobDeleted(id=job.id)


ROUTES = [create_job, list_jobs, get_job, get_job_result, delete_job]
