"""Streaming multipart/form-data: file parts go straight to a private temp directory as they arrive.

The size limit is enforced while reading, so an oversized upload is refused (413) without ever holding the body in
memory; a body that stalls or trickles (see `body_chunks`) is refused (408, `UploadStalled`); a full disk
is `StorageFull` (507). The temp directory is made with the first file part; the caller owns the returned `Form` and
must call `close()` (it removes the directory). On any error the directory is gone before the error leaves.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import unquote_to_bytes

import msgspec
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.api.pace import Pace
from app.api.requests import AnyRequest, services_of
from app.api.resume import request_key
from app.api.tempfiles import new_workdir, storage_errors
from app.errors import InputTooLarge, InvalidInput, UploadStalled

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 64
# Text fields too large to keep in memory (data URLs of reference audio): written to the temp dir like files.
LARGE_FIELDS = frozenset({"known_speaker_references", "known_speaker_references[]"})
# The audio fields are files even when a client sends them without a filename (RFC 7578 makes it optional);
# `audio_file` is whisper-asr-webservice's.
AUDIO_FIELDS = frozenset({"file", "files", "files[]", "audio_file"})
MAX_LARGE_FIELD_BYTES = 8 * 1024 * 1024


class UploadedFile(msgspec.Struct, frozen=True):
    """A file part, or a large text field (`LARGE_FIELDS`, filename ""), as written to the request's temp dir."""

    field: str
    filename: str
    path: Path
    size: int
    sha256: str  # of the bytes, hashed as they arrived (the key of resume on retry)


class Form:
    def __init__(self) -> None:
        self._workdir: Path | None = None
        self.fields: dict[str, list[str]] = {}
        self.files: list[UploadedFile] = []

    @property
    def workdir(self) -> Path:
        """The request's private temp folder, made when the first file part arrives."""
        if self._workdir is None:
            self._workdir = new_workdir()
        return self._workdir

    def first(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def all(self, *names: str) -> list[str]:
        return [value for name in names for value in self.fields.get(name, [])]

    def files_named(self, *names: str) -> list[UploadedFile]:
        return [f for f in self.files if f.field in names]

    def request_key(self, route: str) -> str:
        """The hash of everything in this form (fields, file names and bytes) on `route`: the key of resume."""
        return request_key(route, self.fields, [(f.field, f.filename, f.sha256) for f in self.files])

    def close(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)


class _PartCollector:
    """python-multipart callbacks writing file parts to disk and keeping small text fields."""

    def __init__(self, form: Form, max_bytes: int) -> None:
        self.form = form
        self.max_bytes = max_bytes
        self.total_file_bytes = 0
        self.parts = 0
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._name = ""
        self._filename: str | None = None
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._size = 0
        self._value = bytearray()
        self._hash = hashlib.sha256()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidInput(f"Too many form parts (at most {MAX_PARTS})")
        self._headers = {}
        self._size = 0
        self._value = bytearray()
        self._hash = hashlib.sha256()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_field).decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        self._filename = None if raw_filename is None else raw_filename.decode("utf-8", "replace")
        if self._filename is None and self._name in AUDIO_FIELDS:
            self._filename = "audio"
        if self._filename is not None or self._name in LARGE_FIELDS:
            fd, name = tempfile.mkstemp(prefix="upload-", dir=self.form.workdir)
            self._path = Path(name)
            self._file = os.fdopen(fd, "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        length = end - start
        self._size += length
        if self._file is not None:
            self.total_file_bytes += length
            if self.total_file_bytes > self.max_bytes:
                raise _too_large(self.max_bytes)
            if self._filename is None and self._size > MAX_LARGE_FIELD_BYTES:
                raise InvalidInput(
                    f"Form field '{self._name}' is too long (at most {MAX_LARGE_FIELD_BYTES // (1024 * 1024)} MB)",
                    about=self._name.removesuffix("[]"),
                )
            self._file.write(data[start:end])
            self._hash.update(data[start:end])
        else:
            if self._size > MAX_FIELD_BYTES:
                raise InvalidInput(f"Form field '{self._name}' is too long", about=self._name)
            self._value += data[start:end]

    def on_part_end(self) -> None:
        if self._file is not None and self._path is not None:
            self._file.close()
            self._file = None
            filename = "" if self._filename is None else os.path.basename(self._filename) or "audio"
            self.form.files.append(UploadedFile(self._name, filename, self._path, self._size, self._hash.hexdigest()))
        else:
            self.form.fields.setdefault(self._name, []).append(self._value.decode("utf-8", "replace"))

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):  # a full disk fails the flush too; the file goes with the folder
                self._file.close()
            self._file = None


def _too_large(max_bytes: int) -> InputTooLarge:
    return InputTooLarge(
        f"File is too large: the limit is {max_bytes // (1024 * 1024)} MB (MAX_UPLOAD_MB)",
        about="audio",
        code="file_too_large",
    )


async def body_chunks(request: AnyRequest) -> AsyncIterator[bytes]:
    """The request body as it arrives; `UploadStalled` when a window of UPLOAD_IDLE_TIMEOUT_SECONDS brought no byte,
    or fewer than UPLOAD_MIN_BYTES_PER_SECOND on average (a trickle holding an upload slot). Slow but steady uploads
    go on: every window that has its bytes starts the next."""
    services = services_of(request)
    limits = services.settings.limits
    pace = Pace(
        window_seconds=limits.upload_idle_timeout_seconds, min_bytes_per_second=limits.upload_min_bytes_per_second
    )
    chunks = request.stream()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(anext(chunks), pace.seconds_left())
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise _too_slow(pace) from None
            pace.received(len(chunk))
            services.runner.refuse_if_stopping()  # the server is shutting down: answer now, not when it ends
            yield chunk
    finally:
        await chunks.aclose()


def _too_slow(pace: Pace) -> UploadStalled:
    window = f"{pace.window_seconds:g} s (UPLOAD_IDLE_TIMEOUT_SECONDS)"
    if pace.min_bytes_per_second == 0:
        return UploadStalled(f"The upload made no progress for {window}", code="upload_timeout")
    return UploadStalled(
        f"The upload is too slow: it brought less than {pace.min_bytes_per_second:g} bytes/s "
        f"(UPLOAD_MIN_BYTES_PER_SECOND) over {window}",
        code="upload_timeout",
    )


async def read_form(request: AnyRequest, *, max_bytes: int) -> Form:
    """Parse a multipart request body incrementally; files land in a fresh private temp directory."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise InvalidInput("Expected a multipart/form-data request with the audio in the 'file' field")
    # Form fields and part headers add a little to the body; refuse only what cannot fit.
    if request.content_length is not None and request.content_length > max_bytes + MAX_PARTS * MAX_FIELD_BYTES:
        raise _too_large(max_bytes)
    form = Form()
    collector = _PartCollector(form, max_bytes)
    try:
        parser = MultipartParser(options[b"boundary"], callbacks=collector.callbacks())
    except FormParserError as exc:  # a boundary the parser cannot use (longer than 256 bytes): nothing made yet
        raise InvalidInput(f"The multipart/form-data boundary is unusable: {exc}") from None
    try:
        with storage_errors():
            async for chunk in body_chunks(request):
                parser.write(chunk)
            parser.finalize()
    except FormParserError:
        collector.close()
        form.close()
        raise InvalidInput("The multipart/form-data body is malformed") from None
    except BaseException:
        collector.close()
        form.close()
        raise
    return form


# A data URL in a form field (OpenAI's `known_speaker_references[]`): `data:audio/wav;base64,...`.
DATA_URL = re.compile(rb"^data:(?P<mime>[\w.+/-]*)(?P<params>(?:;[\w.+-]+=[\w.+-]+)*)(?P<base64>;base64)?,")


def decode_data_url(path: Path, param: str) -> Path:
    """Replace a file holding a data URL (`data:audio/wav;base64,...`) with the bytes it carries; returns the path.
    A refusal names the list field `param`."""
    raw = path.read_bytes().strip()
    match = DATA_URL.match(raw[:256])
    if match is None:
        raise InvalidInput(
            f"Each of '{param}[]' must be a data URL such as 'data:audio/wav;base64,...'",
            about=param,
        )
    payload = raw[match.end() :]
    try:
        data = base64.b64decode(payload, validate=True) if match.group("base64") else _percent_decoded(payload)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"A '{param}[]' data URL is not valid base64", about=param) from None
    if not data:
        raise InvalidInput(f"A '{param}[]' data URL carries no audio", about=param)
    with storage_errors():
        path.write_bytes(data)
    return path


def _percent_decoded(payload: bytes) -> bytes:
    return unquote_to_bytes(payload)
