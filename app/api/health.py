"""GET /health: liveness for Docker's healthcheck and a glance at the default model."""

from __future__ import annotations

from typing import cast

from litestar import Response, get

from app.api.context import AnyRequest
from app.api.deps import Services
from app.engines.devices import resolve_device


@get("/health", summary="Liveness and the default model's state")
async def health(request: AnyRequest) -> dict[str, object]:
    services = cast(Services, request.app.state.services)
    settings = services.settings
    return {
        "status": "ok",
        "model": settings.model,
        "device": resolve_device(settings.device),
        "loaded": services.models.is_loaded(settings.model),
        "queue": {"admitted": services.runner.admitted, "running": services.runner.running, "max": settings.max_queue},
    }


@get("/metrics", summary="Prometheus metrics", media_type="text/plain")
async def metrics(request: AnyRequest) -> Response[bytes]:
    services = cast(Services, request.app.state.services)
    running = services.runner.running
    services.metrics.set_queue(services.runner.admitted - running, running)
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)
