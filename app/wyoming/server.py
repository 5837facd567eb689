"""The Wyoming TCP server: started by the app's lifespan when WYOMING_PORT is set, on HOST, beside HTTP.

    server = WyomingServer(services)
    await server.start()    # listening (and advertised, with WYOMING_ZEROCONF)
    await server.stop()     # no new connections; open ones end (their live sessions are closed)

Wyoming has no authentication: whoever reaches the port can transcribe (API_KEY guards HTTP only). Keep it on the
LAN. At most MAX_CONNECTIONS are open at once; more get an `error` event and are closed.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from wyoming.error import Error
from wyoming.event import async_write_event

from app.api.deps import Services
from app.wyoming.connection import Connection
from app.wyoming.framing import MAX_HEADER_BYTES
from app.wyoming.zeroconf import Advertisement

log = structlog.get_logger("app.wyoming")
MAX_CONNECTIONS = 32  # describing clients hold little; streams are bounded by REALTIME_MAX_SESSIONS
ADVERTISE_SECONDS = 10.0  # mDNS probing takes ~1.5 s; start-up never waits for it


class WyomingServer:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings.wyoming
        self.host = services.settings.http.host
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._advertisement: Advertisement | None = None
        self._advertising: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (WYOMING_PORT)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, host=self.host, port=self.settings.wyoming_port, limit=MAX_HEADER_BYTES
        )
        log.info("wyoming_listening", host=self.host, port=self.port)
        if self.settings.wyoming_zeroconf:
            self._advertisement = Advertisement(self.settings.wyoming_zeroconf, self.host, self.port)
            self._advertising = asyncio.create_task(self._advertise(self._advertisement))

    async def _advertise(self, advertisement: Advertisement) -> None:
        try:
            await asyncio.wait_for(advertisement.start(), ADVERTISE_SECONDS)
        except Exception as exc:  # no multicast-capable interface, say: the server works without discovery
            log.warning("wyoming_advertisement_failed", error_type=type(exc).__name__)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        metrics = self.services.metrics
        if len(self._connections) >= MAX_CONNECTIONS:
            metrics.wyoming_connection_ended("refused")
            with contextlib.suppress(Exception):
                refusal = Error(text=f"Too many Wyoming connections ({MAX_CONNECTIONS})", code="too_many_connections")
                await asyncio.wait_for(async_write_event(refusal.event(), writer), 2.0)
            writer.close()
            return
        self._connections.add(task)
        metrics.set_wyoming_connections(len(self._connections))
        try:
            await Connection(self.services, reader, writer).serve()
        finally:
            self._connections.discard(task)
            metrics.set_wyoming_connections(len(self._connections))

    async def stop(self) -> None:
        if self._advertising is not None:
            self._advertising.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._advertising
        if self._advertisement is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._advertisement.stop(), 5.0)
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=5.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
