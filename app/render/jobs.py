"""The bodies of the jobs resource (POST/GET/DELETE /v1/jobs): a job as its submitter polls it, the queue as
everyone sees it (`JobSummary`: no whole id, so the list never hands out what fetches a result), a deletion."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.job_store import JobStatus
from app.settings import ResponseFormat
from app.transcript import Task

UnixSeconds = Annotated[int, msgspec.Meta(ge=0, description="Unix time, seconds")]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class JobError(msgspec.Struct):
    """Why a job failed: OpenAI's error object (the fields of every error body), as the job carries it."""

    message: str
    type: str
    param: str | None
    code: str | None


class JobState(msgspec.Struct, kw_only=True):
    """Where a job stands: its status, its progress and, while it waits or runs, its place in the queue and the
    estimated seconds until it is done (from this model's measured speed on this machine)."""

    status: JobStatus
    task: Task
    model: Annotated[str, msgspec.Meta(description="The model asked for; the one that ran once chosen")]
    created_at: UnixSeconds
    started_at: UnixSeconds | None
    finished_at: UnixSeconds | None
    expires_at: Annotated[
        UnixSeconds | None, msgspec.Meta(description="When a finished job is dropped (JOBS_TTL_SECONDS)")
    ]
    duration: Annotated[NonNegative | None, msgspec.Meta(description="Seconds of audio (None: not known yet)")]
    progress: Annotated[
        Fraction | None, msgspec.Meta(description="Audio seconds done / duration (None: length unknown)")
    ]
    position: Annotated[
        Count | None,
        msgspec.Meta(description="Requests and jobs ahead of it (the running one included); 0 once running"),
    ]
    eta_seconds: Annotated[
        NonNegative | None, msgspec.Meta(description="Estimated seconds until done (None: no speed measured yet)")
    ]


class Job(JobState, kw_only=True):
    """A job, as POST /v1/jobs answers it and GET /v1/jobs/{id} shows it."""

    id: Annotated[str, msgspec.Meta(description="`job_` and 128 random bits: the only way to reach the job")]
    object: Literal["job"] = "job"
    response_format: Annotated[
        ResponseFormat, msgspec.Meta(description="The result's format when GET .../result names none")
    ]
    error: JobError | None


class JobSummary(JobState, kw_only=True):
    """A job in the queue as everyone sees it: its id only as logs show it, enough to tell one's own jobs apart."""

    short_id: Annotated[str, msgspec.Meta(description="The id's first characters (never enough to reach the job)")]
    object: Literal["job.summary"] = "job.summary"


class JobList(msgspec.Struct, kw_only=True):
    """The jobs held, newest first."""

    object: Literal["list"] = "list"
    data: list[JobSummary]


class JobDeleted(msgspec.Struct, kw_only=True):
    """A finished job forgotten (its result is gone)."""

    id: str
    object: Literal["job.deleted"] = "job.deleted"
    deleted: Literal[True] = True
