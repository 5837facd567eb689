"""Optional mDNS advertisement (WYOMING_ZEROCONF=<name>): Home Assistant discovers `_wyoming._tcp.local.` services
and offers to add them. Off by default: announcing sends multicast packets onto the LAN, and a private appliance
sends nothing unless asked.

The advertised address is HOST when it is a specific IPv4 address (announced on that interface only), else the
address of the interface that routes to the mDNS group (found with a connected UDP socket, which sends nothing).
In a container this is the container's own address unless it runs with host networking (see README).
"""

from __future__ import annotations

import socket

import structlog
from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

log = structlog.get_logger("app.wyoming")
SERVICE_TYPE = "_wyoming._tcp.local."
MDNS_GROUP = "224.0.0.251"
ANY_ADDRESS = ("", "0.0.0.0", "::")


def routed_address() -> str:
    """This host's address towards the mDNS group (no packet is sent: connecting a UDP socket only picks a route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((MDNS_GROUP, 5353))
        return str(probe.getsockname()[0])


class Advertisement:
    """`name._wyoming._tcp.local.` pointing at `host:port` while started."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name = name
        self.port = port
        self.specific = host not in ANY_ADDRESS
        self.address = host if self.specific else routed_address()
        self.info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{name}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(self.address)],
            port=port,
            server=f"{name}.local.",
        )
        self._zeroconf: AsyncZeroconf | None = None

    async def start(self) -> None:
        interfaces = [self.address] if self.specific else InterfaceChoice.All
        self._zeroconf = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
        await (await self._zeroconf.async_register_service(self.info))  # a task: probing, then announcing
        log.info("wyoming_advertised", service=self.info.name, address=self.address, port=self.port)

    async def stop(self) -> None:
        if self._zeroconf is None:
            return
        zeroconf, self._zeroconf = self._zeroconf, None
        try:
            await (await zeroconf.async_unregister_service(self.info))  # a task: the goodbye packets
        finally:
            await zeroconf.async_close()
