"""Download an audio URL to a private temp file, refusing internal addresses (SSRF guard).

Every hop is resolved once with getaddrinfo, every resolved address is checked, and the connection is then made to
the checked IP itself (the URL's host replaced by the IP, the `Host` header and the TLS SNI / certificate check kept
on the original name). So a DNS answer that changes between the check and the connect (DNS rebinding) cannot move
the request to another address. Redirects are followed by hand (at most `MAX_REDIRECTS`), each hop checked again.
Proxies from the environment are ignored (`trust_env=False`): a proxy would make the pinning meaningless.

Failures are domain errors (`app.errors`), all about the "audio" input.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import socket
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from app.api.pace import Pace
from app.api.tempfiles import storage_errors
from app.errors import InputTooLarge, InvalidInput, SourceFailed, SourceNotFound, SourceTimeout

MAX_REDIRECTS = 5
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints: refused even with ALLOW_PRIVATE_URLS=true (no LAN audio source lives there).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,5}$")


def is_private_address(ip: IPAddress) -> bool:
    """True for anything that is not a plain public unicast address (IPv4-mapped IPv6 judged by its IPv4)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_private_address(ip.ipv4_mapped)
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT)
        or not ip.is_global
    )


def _is_metadata(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped in METADATA_ADDRESSES
    return ip in METADATA_ADDRESSES


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """All addresses `host` resolves to (a literal IP resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise InvalidInput(f"Cannot resolve the host of audio_file_url: {host}", about="audio") from None
    addresses: list[IPAddress] = []
    for info in infos:
        # sockaddr[0] may carry an IPv6 zone ("fe80::1%eth0"): drop it before parsing.
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise InvalidInput(f"Cannot resolve the host of audio_file_url: {host}", about="audio")
    return addresses


Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
# What `_checked_address` takes as a scheme (after the caller strips spaces), as the OpenAPI contract states it.
HTTP_URL_PATTERN = r"^\s*[Hh][Tt][Tt][Pp][Ss]?://"


async def _checked_address(url: httpx.URL, allow_private: bool, resolver: Resolver) -> IPAddress:
    if url.scheme not in ("http", "https"):
        raise InvalidInput("audio_file_url must be an http or https URL", about="audio")
    if not url.host:
        raise InvalidInput("audio_file_url has no host", about="audio")
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await resolver(url.host, port)
    for ip in addresses:
        if _is_metadata(ip):
            raise InvalidInput(
                f"URL resolves to a cloud metadata address ({ip}); refused", about="audio", code="ssrf_refused"
            )
        if not allow_private and is_private_address(ip):
            raise InvalidInput(
                f"URL resolves to a private address ({ip}); set ALLOW_PRIVATE_URLS=true to allow LAN sources",
                about="audio",
                code="ssrf_refused",
            )
    return addresses[0]


def _pinned_request(client: httpx.AsyncClient, url: httpx.URL, ip: IPAddress) -> httpx.Request:
    """A GET to the checked IP that still names the original host (Host header, SNI and certificate check)."""
    host_header = url.host if url.port is None else f"{url.host}:{url.port}"
    if ":" in url.host and url.port is None:  # an IPv6 literal host
        host_header = f"[{url.host}]"
    elif ":" in url.host:
        host_header = f"[{url.host}]:{url.port}"
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return client.build_request(
        "GET",
        url.copy_with(host=str(ip)),
        headers={"Host": host_header, "Accept-Encoding": "identity"},
        extensions=extensions,
    )


def _suffix(url: httpx.URL) -> str:
    match = _SUFFIX.search(url.path)
    return match.group(0).lower() if match else ""


async def fetch_to_tempfile(
    url: str,
    *,
    max_bytes: int,
    timeout_s: float,
    allow_private: bool,
    dest_dir: Path | None = None,
    resolver: Resolver = resolve_host,
    min_bytes_per_second: float = 0.0,
    pace_window_seconds: float = 30.0,
) -> Path:
    """Download `url` into a new 0600 temp file and return its path; the caller deletes it.

    `timeout_s` bounds the whole download (connect, every hop, the body); the body must also keep a `Pace` (at least
    `min_bytes_per_second` over every `pace_window_seconds`), so a dripping source is dropped early. On any error the
    partial file is removed.
    Raises InvalidInput (bad scheme, unresolvable or refused address, too many redirects), SourceNotFound (source 404),
    InputTooLarge (more than `max_bytes`), SourceTimeout or SourceFailed (other statuses, network), StorageFull.
    """
    try:
        current = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise InvalidInput("audio_file_url is not a valid URL", about="audio") from None

    with storage_errors():
        fd, name = tempfile.mkstemp(prefix="fetch-", suffix=_suffix(current), dir=dest_dir)  # mode 0600
    path = Path(name)
    try:
        async with asyncio.timeout(timeout_s):
            pace = (min_bytes_per_second, pace_window_seconds)
            await _download(current, fd, max_bytes, timeout_s, allow_private, resolver, pace)
    except TimeoutError:
        _discard(fd, path)
        raise SourceTimeout(f"The audio source did not respond within {timeout_s:g} s", about="audio") from None
    except BaseException:
        _discard(fd, path)
        raise
    os.close(fd)
    return path


def _discard(fd: int, path: Path) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    path.unlink(missing_ok=True)


async def _download(
    url: httpx.URL,
    fd: int,
    max_bytes: int,
    timeout_s: float,
    allow_private: bool,
    resolver: Resolver,
    pace: tuple[float, float],
) -> None:
    timeout = httpx.Timeout(timeout_s)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            ip = await _checked_address(url, allow_private, resolver)
            request = _pinned_request(client, url, ip)
            try:
                response = await client.send(request, stream=True)
            except httpx.TimeoutException:
                raise TimeoutError from None
            except httpx.HTTPError as exc:
                raise SourceFailed(f"Could not fetch audio_file_url: {type(exc).__name__}", about="audio") from None
            try:
                if response.status_code in _REDIRECT_CODES and "location" in response.headers:
                    try:
                        url = url.join(response.headers["location"])
                    except httpx.InvalidURL:
                        raise SourceFailed("The audio source sent an invalid redirect", about="audio") from None
                    continue
                if response.status_code == 404:
                    raise SourceNotFound("Audio file not found", about="audio")
                if not 200 <= response.status_code < 300:
                    raise SourceFailed(f"The audio source answered HTTP {response.status_code}", about="audio")
                await _write_body(response, fd, max_bytes, Pace(min_bytes_per_second=pace[0], window_seconds=pace[1]))
                return
            finally:
                await response.aclose()
    raise InvalidInput(f"audio_file_url redirected more than {MAX_REDIRECTS} times", about="audio")


async def _write_body(response: httpx.Response, fd: int, max_bytes: int, pace: Pace) -> None:
    too_large = InputTooLarge(f"The audio file is larger than the limit of {max_bytes} bytes", about="audio")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    received = 0
    chunks = response.aiter_raw()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(anext(chunks), pace.seconds_left())
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise SourceTimeout(
                    f"The audio source sends too slowly: less than {pace.min_bytes_per_second:g} bytes/s over "
                    f"{pace.window_seconds:g} s",
                    about="audio",
                ) from None
            pace.received(len(chunk))
            received += len(chunk)
            if received > max_bytes:
                raise too_large
            view = memoryview(chunk)
            with storage_errors():
                while view:
                    view = view[os.write(fd, view) :]
    except httpx.TimeoutException:
        raise TimeoutError from None
    except httpx.HTTPError as exc:
        raise SourceFailed(f"The audio download broke off: {type(exc).__name__}", about="audio") from None
