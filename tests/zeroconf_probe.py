"""Run inside a fresh network namespace (`unshare --net`, loopback only) by tests/unit/test_wyoming_zeroconf.py: start
the Wyoming server with WYOMING_ZEROCONF on 127.0.0.1, find it with zeroconf's own browser as Home Assistant's
discovery does, describe it at the address it advertises, stop it, and see it withdrawn. Prints one JSON line."""

from __future__ import annotations

import asyncio
import fcntl
import json
import socket
import struct
import sys
import tempfile
from pathlib import Path

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

import app  # noqa: F401  (telemetry off first)
from app.api.deps import Services
from app.settings import EngineSettings, HttpSettings, Settings, WyomingSettings
from app.wyoming.server import WyomingServer
from app.wyoming.zeroconf import SERVICE_TYPE
from tests import wyoming_client

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up() -> None:
    """A new network namespace has only `lo`, down: bring it up (what `ip link set lo up` does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def interfaces() -> list[str]:
    return [name for _, name in socket.if_nameindex()]


async def probe(models_dir: Path, port: int) -> dict[str, object]:
    settings = Settings(
        engines=EngineSettings(model="tiny.en", allowed_models=("tiny.en",), models_dir=models_dir),
        http=HttpSettings(host="127.0.0.1"),
        wyoming=WyomingSettings(wyoming_port=port, wyoming_zeroconf="living-room-stt"),
    )
    server = WyomingServer(Services(settings))
    browser_zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    seen: list[tuple[str, str]] = []

    def changed(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        seen.append((name, state_change.name))

    browser = AsyncServiceBrowser(browser_zc.zeroconf, [SERVICE_TYPE], handlers=[changed])
    await server.start()
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.1)
    info = AsyncServiceInfo(SERVICE_TYPE, f"living-room-stt.{SERVICE_TYPE}")
    found = await info.async_request(browser_zc.zeroconf, 3000)
    addresses = info.parsed_addresses() if found else []
    described = await wyoming_client.describe(addresses[0], info.port or 0) if addresses else None
    await server.stop()
    for _ in range(50):
        if any(state == "Removed" for _, state in seen):
            break
        await asyncio.sleep(0.1)
    await browser.async_cancel()
    await browser_zc.async_close()
    return {
        "interfaces": interfaces(),
        "seen": seen,
        "port": info.port,
        "addresses": addresses,
        "server": info.server,
        "models": [m.name for m in described.asr[0].models] if described else None,
    }


def main() -> None:
    loopback_up()
    port = int(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(asyncio.run(probe(Path(tmp), port))))


if __name__ == "__main__":
    main()
