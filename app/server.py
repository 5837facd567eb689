"""The app factory: settings in, a Litestar app out. Start-up cleans the temp folder and loads the default model
(unless told not to); a janitor unloads idle models; shutdown unloads every model and cleans the temp folder. A
SIGTERM first reaches `Services.begin_shutdown` (`app/__main__.py`), which answers the requests in progress."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import structlog
from litestar import Litestar
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware

from app import VERSION
from app.api import contract, health, job_routes, openai, realtime, reflector, transcriptions, whisper_asr
from app.api.deps import Services
from app.api.errors import EXCEPTION_HANDLERS
from app.api.middleware import RequestMiddleware
from app.api.tempfiles import clean_temp_root
from app.api.ui import openapi_config, ui_router
from app.errors import ModelUnavailable
from app.settings import Settings
from app.tls import ServerCertificate
from app.worker.threads import configure_threads
from app.wyoming.server import WyomingServer

log = structlog.get_logger("app")
SHUTDOWN_UNLOAD_SECONDS = 10.0


async def _unload_when_idle(services: Services) -> None:
    """Every few seconds, unload models idle for UNLOAD_MODEL_AFTER_S (on the worker, between jobs)."""
    idle_after = services.settings.engines.unload_model_after_s
    period = max(0.5, min(10.0, idle_after / 4))
    while True:
        await asyncio.sleep(period)
        quiet_for = time.monotonic() - services.runner.last_activity
        if services.residency.keys and services.runner.admitted == 0 and quiet_for >= idle_after:
            await asyncio.wrap_future(services.runner.run_internal(lambda: services.residency.unload_idle(idle_after)))


async def _expire_jobs(services: Services) -> None:
    """Drop finished jobs whose time to live is over, even when nobody asks for any (results leave memory)."""
    period = max(0.5, min(30.0, services.settings.jobs.jobs_ttl_seconds / 4))
    while True:
        await asyncio.sleep(period)
        services.jobs.sweep()


def create_app(settings: Settings, *, tls: ServerCertificate | None = None) -> Litestar:
    """`tls`: the certificate uvicorn serves (made or checked by `app.tls.prepare_tls`), for /health and the log."""
    configure_threads(settings.engines.num_threads)
    services = Services(settings, tls=tls)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        removed = clean_temp_root()
        if removed:
            log.info("stale_temp_files_removed", count=removed)
        if settings.engines.load_model_on_startup:
            try:
                await asyncio.wrap_future(services.runner.run_internal(services.transcriber.load_default))
            except ModelUnavailable as exc:
                # Keep serving (health, other models, the page); requests for this model get the same message.
                log.error("model_unavailable", model=settings.engines.model, message=exc.message)
        janitor = (
            asyncio.create_task(_unload_when_idle(services)) if settings.engines.unload_model_after_s > 0 else None
        )
        wyoming = WyomingServer(services) if settings.wyoming.wyoming_port is not None else None
        if wyoming is not None:
            await wyoming.start()
        if tls is not None:  # what a user checks before accepting or trusting the certificate
            log.info(
                "tls",
                mode=tls.mode,
                fingerprint_sha256=tls.fingerprint_sha256,
                ca_fingerprint_sha256=tls.ca_fingerprint_sha256,
                ca_file=None if tls.ca_file is None else str(tls.ca_file),
                names=",".join(tls.names),
            )
        expiry = asyncio.create_task(_expire_jobs(services))
        scheme = "https" if tls is not None else "http"
        log.info("ready", model=settings.engines.model, host=settings.http.host, port=settings.http.port, scheme=scheme)
        try:
            yield
        finally:
            if janitor is not None:
                janitor.cancel()
            if wyoming is not None:
                await wyoming.stop()
            expiry.cancel()
            services.resumable.abandon_all()
            services.jobs.cancel_all()
            # After the job in progress (if any) has stopped; a job that will not stop does not hold shutdown up.
            with contextlib.suppress(TimeoutError):
                unload = services.runner.run_internal(services.residency.unload_all)
                await asyncio.wait_for(asyncio.wrap_future(unload), timeout=SHUTDOWN_UNLOAD_SECONDS)
            services.runner.shutdown()
            clean_temp_root()  # whatever a request cut off by the exit left

    return Litestar(
        route_handlers=[
            *transcriptions.ROUTES,
            *openai.ROUTES,
            *reflector.ROUTES,
            *realtime.ROUTES,
            *whisper_asr.ROUTES,
            *job_routes.ROUTES,
            health.health,
            health.metrics,
            health.ca_certificate,
            ui_router(),
        ],
        lifespan=[lifespan],
        state=State({"services": services}),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[DefineMiddleware(RequestMiddleware, api_key=settings.http.api_key, metrics=services.metrics)],
        request_max_body_size=None,  # uploads are limited while streaming (MAX_UPLOAD_MB), see app/api/forms.py
        openapi_config=openapi_config(
            "STT appliance",
            VERSION,
            contract.components(services),
            contract.security(services),
            contract.API_DESCRIPTION,
        ),
        debug=False,
        logging_config=None,  # Litestar's default would give stdlib records a second format; see app/logs.py
    )
