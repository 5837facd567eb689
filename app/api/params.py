"""Request parsing for both dialects: OpenAI's form options, Reflector's upload plan, query and JSON parameters.

Every refusal is `InvalidInput` (or `InputTooLarge`) about the parameter, so it leaves as a 400 naming it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar, cast, get_args

import msgspec

from app import render
from app.api.forms import Form, UploadedFile, body_chunks
from app.api.requests import AnyRequest
from app.errors import InputTooLarge, InvalidInput
from app.settings import ResponseFormat, parse_flag

S = TypeVar("S", bound=msgspec.Struct)
RESPONSE_FORMATS: tuple[str, ...] = get_args(ResponseFormat)
GRANULARITIES = ("word", "segment")
MAX_JSON_BYTES = 256 * 1024
REFLECTOR_FILE_FIELDS = ("files", "files[]")


def parse_bool(value: str | None, param: str) -> bool:
    """A form or query flag: true/false, 1/0, yes/no, on/off; absent or empty is false."""
    if value is None or not value.strip():
        return False
    try:
        return parse_flag(value)
    except ValueError:
        raise InvalidInput(f"Invalid value for '{param}': expected true or false, got '{value}'", about=param) from None


def parse_number(raw: str | None, param: str) -> float:
    """A finite number; absent or empty is 0."""
    if raw is None or not raw.strip():
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"Invalid value for '{param}': expected a number, got '{raw}'", about=param) from None
    return finite(value, param)


def finite(value: float, param: str) -> float:
    if not math.isfinite(value):
        raise InvalidInput(f"'{param}' must be a finite number", about=param)
    return value


# --- OpenAI ------------------------------------------------------------------------------------------------------


class Options(msgspec.Struct, frozen=True, kw_only=True):
    """How an OpenAI-form request wants its answer."""

    response_format: ResponseFormat
    words: bool
    segments: bool
    stream: bool


def parse_options(form: Form, default_format: ResponseFormat) -> Options:
    response_format = (form.first("response_format") or default_format).strip()
    if response_format not in RESPONSE_FORMATS:
        raise InvalidInput(
            f"Invalid response_format '{response_format}': use one of {', '.join(RESPONSE_FORMATS)}",
            about="response_format",
        )
    granularities = form.all("timestamp_granularities[]", "timestamp_granularities")
    for value in granularities:
        if value not in GRANULARITIES:
            raise InvalidInput(
                f"Invalid timestamp_granularities value '{value}': use 'word' and/or 'segment'",
                about="timestamp_granularities",
            )
    temperature = form.first("temperature")
    if temperature:
        try:
            number = float(temperature)
        except ValueError:
            number = -1.0
        if not 0.0 <= number <= 1.0:
            raise InvalidInput(f"Invalid temperature '{temperature}': use a number from 0 to 1", about="temperature")
    words, segments = render.verbose_flags(granularities)
    return Options(
        response_format=cast(ResponseFormat, response_format),
        words=words,
        segments=segments,
        stream=parse_bool(form.first("stream"), "stream"),
    )


def single_file(form: Form) -> UploadedFile:
    files = form.files_named("file")
    if not files:
        raise InvalidInput("Missing required parameter: 'file' (the audio to transcribe)", about="audio")
    if len(files) > 1:
        raise InvalidInput("Send exactly one 'file'", about="audio")
    return files[0]


# --- Reflector ---------------------------------------------------------------------------------------------------


class UploadPlan(msgspec.Struct, frozen=True):
    """What a valid Reflector-form upload asks for: the files to transcribe, in order, and the answer's shape."""

    file_indices: tuple[int, ...]  # indices into the request's list of files
    multiple: bool  # answer {"results": [...]} rather than one object
    model: str | None


def is_reflector_form(field_names: Iterable[str], file_fields: Iterable[str]) -> bool:
    """ADR 16: a request is in Reflector's form iff it carries `files`/`files[]` files or a `batch` field."""
    return any(f in REFLECTOR_FILE_FIELDS for f in file_fields) or "batch" in set(field_names)


def plan_upload(fields: Mapping[str, Sequence[str]], file_fields: Sequence[str]) -> UploadPlan:
    """Validate a Reflector-form upload (seed 002): `file` or `files`, never both, never neither; `batch` needs files.

    `file_fields` lists each uploaded file's form field name, in request order. Multiple files, or batch=true,
    answer `{"results": [...]}` (the same shape whatever `batch` says); one file without batch answers one object.
    """
    single = [i for i, f in enumerate(file_fields) if f == "file"]
    many = [i for i, f in enumerate(file_fields) if f in REFLECTOR_FILE_FIELDS]
    batch_values = fields.get("batch") or []
    batch = bool(batch_values) and parse_bool(batch_values[0], "batch")
    if single and many:
        raise InvalidInput("Provide either 'file' or 'files', not both", about="files")
    if not single and not many:
        raise InvalidInput("Missing required parameter: 'file' or 'files' (the audio to transcribe)", about="files")
    if batch and not many:
        raise InvalidInput("'batch=true' requires 'files'", about="batch")
    if len(single) > 1:
        raise InvalidInput("Send one 'file', or several as 'files'", about="audio")
    model_values = fields.get("model") or []
    model = (model_values[0].strip() if model_values else "") or None
    indices = tuple(single or many)
    return UploadPlan(file_indices=indices, multiple=batch or len(indices) > 1, model=model)


class FromUrlBody(msgspec.Struct, kw_only=True):
    """Unknown keys (Reflector sends `batch`) are ignored."""

    audio_file_url: str | None = None
    model: str | None = None
    language: str | None = None
    timestamp_offset: float | None = None


class TranslateBody(msgspec.Struct, kw_only=True):
    text: str | None = None
    source_language: str | None = None
    target_language: str | None = None


async def read_json(request: AnyRequest, kind: type[S], *, required: str | None) -> S | None:
    """A small JSON object body decoded into `kind`; None when the body is empty and nothing is `required`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in body_chunks(request):
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise InputTooLarge(f"The JSON body is larger than {MAX_JSON_BYTES // 1024} KB")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if required:
            raise InvalidInput(f"Expected a JSON body with '{required}'", about=required)
        return None
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        param = str(exc).rsplit("$.", 1)[1].rstrip("`") if "$." in str(exc) else None
        raise InvalidInput(f"Invalid JSON body: {exc}", about=param) from None
    except msgspec.DecodeError:
        raise InvalidInput("The request body is not valid JSON") from None


def required_text(value: str | None, param: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"Missing required parameter: '{param}'", about=param)
    return text
