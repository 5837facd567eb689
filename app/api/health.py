"""GET /health (liveness for Docker's healthcheck, the default model, what is resident, the TLS certificate's
fingerprints), GET /metrics, and GET /ca.pem (TLS=self-signed: the authority to trust)."""

from __future__ import annotations

import asyncio
from typing import Literal

import msgspec
from litestar import Response, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException

from app.api import contract
from app.api.requests import AnyRequest, services_of
from app.engines.devices import resolve_device
from app.tls import TlsSummary
from app.transcription.catalog import AutoRouting
from app.worker.residency import ModelKind


class ResidentModel(msgspec.Struct, frozen=True):
    name: str
    kind: ModelKind  # speech, language (MODEL=auto's detector), speaker, translation


class QueueState(msgspec.Struct, frozen=True):
    admitted: int  # requests holding a queue slot (running or waiting)
    running: int
    waiting: int  # requests' and jobs' work waiting for the worker
    max: int  # MAX_QUEUE
    uploading: int  # requests whose upload is being read
    max_uploads: int  # MAX_UPLOADS


class JobsState(msgspec.Struct, frozen=True):
    """The jobs held (POST /v1/jobs)."""

    queued: int  # waiting their turn
    running: int
    held: int  # every job held, finished ones not yet expired included
    max: int  # MAX_JOBS


class Health(msgspec.Struct, frozen=True):
    status: Literal["ok"]
    model: str  # MODEL
    device: str  # where the models run: cpu or cuda
    loaded: bool  # MODEL is resident (MODEL=auto: its language detector is)
    resident: list[ResidentModel]  # every resident model of every kind, least recently used first
    auto: AutoRouting | None  # MODEL=auto's routes, detector and which of their models are resident
    queue: QueueState
    tls: TlsSummary | None  # the certificate served: its fingerprints and names (None: plain http)
    jobs: JobsState


@get(
    "/health",
    summary="Liveness, the default model's state and the resident models",
    response_description="Liveness and state",
    operation_class=contract.PUBLIC,
)
async def health(request: AnyRequest) -> Health:
    services = services_of(request)
    settings = services.settings
    runner = services.runner
    catalog = services.catalog
    counts = services.jobs.counts()
    return Health(
        status="ok",
        model=settings.engines.model,
        device=resolve_device(settings.engines.device),
        loaded=catalog.default().resident,
        resident=[ResidentModel(key.name, key.kind) for key in catalog.resident()],
        auto=catalog.auto(),
        queue=QueueState(
            admitted=runner.admitted,
            running=runner.running,
            waiting=runner.waiting,
            max=settings.limits.max_queue,
            uploading=runner.uploading,
            max_uploads=settings.limits.max_uploads,
        ),
        tls=None if services.tls is None else services.tls.summary(),
        jobs=JobsState(
            queued=counts["queued"],
            running=counts["running"],
            held=sum(counts.values()),
            max=settings.jobs.max_jobs,
        ),
    )


@get("/ca.pem", include_in_schema=False, cache_control=CacheControlHeader(no_cache=True))
async def ca_certificate(request: AnyRequest) -> Response[bytes]:
    """TLS=self-signed: the certificate authority to trust (a phone downloads it here once it has accepted the
    certificate; compare its fingerprint with /health's `ca_fingerprint_sha256` or the log's)."""
    tls = services_of(request).tls
    if tls is None or tls.ca_file is None:
        raise NotFoundException("This server has no certificate authority of its own (TLS=self-signed makes one)")
    body = await asyncio.to_thread(tls.ca_file.read_bytes)
    return Response(body, media_type="application/x-pem-file")


@get(
    "/metrics",
    summary="Prometheus metrics",
    media_type="text/plain",
    response_description="Prometheus text format",
    operation_class=contract.PUBLIC,
)
async def metrics(request: AnyRequest) -> Response[bytes]:
    services = services_of(request)
    running = services.runner.running
    services.metrics.set_queue(services.runner.admitted - running, running)
    services.metrics.set_uploads(services.runner.uploading)
    services.metrics.set_jobs(services.jobs.counts().items())
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)
