"""GET /health: liveness for Docker's healthcheck and a glance at the default model."""

from __future__ import annotations

from typing import cast

from litestar import get

from app.api.context import AnyRequest
from app.api.services import Services
from app.devices import resolve_device


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
