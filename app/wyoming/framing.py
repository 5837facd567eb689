"""Reading Wyoming events with every length bounded.

A Wyoming event is a JSON header line (`{"type", "data"?, "data_length"?, "payload_length"?, "version"?}` and a
newline), then `data_length` bytes of JSON merged into `data`, then `payload_length` bytes of payload (audio). The
reference library's reader (`wyoming.event.async_read_event`) reads whatever lengths a header declares into memory
and turns a broken header into a silent end of the stream; this one refuses oversized parts and says what was wrong
(`FramingError`), and returns the library's own `Event`. After a framing error the stream cannot be trusted to be in
step any more: the connection answers with an `error` event and closes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from wyoming.event import Event

MAX_HEADER_BYTES = 64 * 1024  # one header line
MAX_DATA_BYTES = 1024 * 1024  # Home Assistant's transcript_names can list every entity and area of a large home
MAX_PAYLOAD_BYTES = 1024 * 1024  # one audio chunk: ~5 s of 48 kHz stereo 16-bit (clients send 20-100 ms)


class FramingError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FramingError(f"'{key}' must be a non-negative integer", "invalid_header")
    if value > limit:
        raise FramingError(f"'{key}' is {value} bytes; at most {limit} are accepted", "too_large")
    return value


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise FramingError(f"The event {what} is not valid JSON", "invalid_json") from None
    if not isinstance(value, dict):
        raise FramingError(f"The event {what} must be a JSON object", "invalid_json")
    return value


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event, or None at the end of the stream (between events). Raises FramingError for a malformed or
    oversized event, and `asyncio.IncompleteReadError` when the stream ends inside one."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise
    except asyncio.LimitOverrunError:
        raise FramingError(f"An event header is longer than {MAX_HEADER_BYTES} bytes", "too_large") from None
    header = _json_object(line, "header")
    kind = header.get("type")
    if not isinstance(kind, str) or not kind:
        raise FramingError("An event header needs a 'type' string", "invalid_header")
    data = header.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        raise FramingError("'data' must be a JSON object", "invalid_header")
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    if data_length:
        data.update(_json_object(await reader.readexactly(data_length), "data"))
    payload = await reader.readexactly(payload_length) if payload_length else None
    return Event(type=kind, data=data, payload=payload)
