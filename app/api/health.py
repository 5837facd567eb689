"""GET /health (liveness for Docker's healthcheck, the default model, what is resident) and GET /metrics."""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import Response, get

from app.api import contract
from app.api.requests import AnyRequest, services_of
from app.engines.devices import resolve_device
from app.transcription.catalog import AutoRouting
from app.worker.residency import ModelKind


class ResidentModel(msgspec.Struct, frozen=True):
    name: str
    kind: ModelKind  # speech, language (MODEL=auto's detector), speaker, translation


class QueueState(msgspec.Struct, frozen=True):
    admitted: int  # requests holding a queue slot (running or waiting)
    running: int
    max: int  # MAX_QUEUE
    uploading: int  # requests whose upload is being read
    max_uploads: int  # MAX_UPLOADS


class Health(msgspec.Struct, frozen=True):
    status: Literal["ok"]
    model: str  # MODEL
    device: str  # where the models run: cpu or cuda
    loaded: bool  # MODEL is resident (MODEL=auto: its language detector is)
    resident: list[ResidentModel]  # every resident model of every kind, least recently used first
    auto: AutoRouting | None  # MODEL=auto's routes, detector and which of their models are resident
    queue: QueueState


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
            max=settings.limits.max_queue,
            uploading=runner.uploading,
            max_uploads=settings.limits.max_uploads,
        ),
    )


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
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)
