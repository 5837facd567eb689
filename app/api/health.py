"""GET /health (liveness for Docker's healthcheck, the default model, what is resident) and GET /metrics."""

from __future__ import annotations

from litestar import Response, get

from app.api import contract
from app.api.deps import Services
from app.api.requests import AnyRequest, services_of
from app.engines.devices import resolve_device


def auto_state(services: Services) -> dict[str, object] | None:
    """MODEL=auto's routes, its language detector, and whether each of their models is loaded (ready)."""
    router = services.transcriber.router
    if router is None:
        return None
    return {
        "routes": router.routes,
        "detector": router.detector,
        "ready": {name: services.transcriber.is_resident(name) for name in router.models},
    }


@get(
    "/health",
    summary="Liveness, the default model's state and the resident models",
    operation_class=contract.HEALTH,
)
async def health(request: AnyRequest) -> dict[str, object]:
    services = services_of(request)
    settings = services.settings
    runner = services.runner
    return {
        "status": "ok",
        "model": settings.engines.model,
        "device": resolve_device(settings.engines.device),
        "loaded": services.transcriber.is_resident(settings.engines.model),
        "resident": [{"name": key.name, "kind": key.kind} for key in services.residency.keys],
        "auto": auto_state(services),
        "queue": {
            "admitted": runner.admitted,
            "running": runner.running,
            "max": settings.limits.max_queue,
            "uploading": runner.uploading,
            "max_uploads": settings.limits.max_uploads,
        },
    }


@get("/metrics", summary="Prometheus metrics", media_type="text/plain", operation_class=contract.METRICS)
async def metrics(request: AnyRequest) -> Response[bytes]:
    services = services_of(request)
    running = services.runner.running
    services.metrics.set_queue(services.runner.admitted - running, running)
    services.metrics.set_uploads(services.runner.uploading)
    body, content_type = services.metrics.render()
    return Response(body, media_type=content_type)
