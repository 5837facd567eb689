"""Reflector's request shapes (seed 002, ADR 16): its upload form, the from-URL and translate bodies."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, TypeVar

import msgspec

from app.api.forms import body_chunks
from app.api.params import convert, parse_bool
from app.api.requests import AnyRequest
from app.errors import InputTooLarge, InvalidInput

S = TypeVar("S", bound=msgspec.Struct)
MAX_JSON_BYTES = 256 * 1024

REFLECTOR_FILE_FIELDS = ("files", "files[]")
# Model names Reflector sends that mean "this server's model" unless an operator allowed that exact name.
REFLECTOR_DEFAULT_MODELS = frozenset({"nvidia/parakeet-tdt-0.6b-v2", "nvidia/parakeet-tdt-0.6b-v3", "whisper-1"})


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


class ReflectorForm(msgspec.Struct, kw_only=True):
    """POST /v1/audio/transcriptions in Reflector's form (ADR 16): `files[]` (or `files`), and `batch`."""

    files: Annotated[list[bytes], msgspec.Meta(min_length=1)] = msgspec.field(name="files[]")
    batch: bool = False
    model: str = ""
    language: str = ""


class FromUrlBody(msgspec.Struct, kw_only=True):
    """Unknown keys (Reflector sends `batch`) are ignored."""

    audio_file_url: str | None = None
    model: str | None = None
    language: str | None = None
    timestamp_offset: float | None = None


# A language code as /translate takes it (spaces and capitals allowed: the route strips and lower-cases it).
LANGUAGE_CODE = re.compile(r"^\s*[A-Za-z]{2,3}\s*$")
LanguageCode = Annotated[str, msgspec.Meta(pattern=LANGUAGE_CODE.pattern)]


def language_code(value: str | None, param: str) -> str:
    """A required language code (query or body), checked and lower-cased."""
    code = required_text(value, param)
    if not LANGUAGE_CODE.fullmatch(code):
        raise InvalidInput(f"Invalid language code '{code[:20]}': use an ISO 639-1 code like 'en'", about=param)
    return code.lower()


class TranslateBody(msgspec.Struct, kw_only=True):
    """Each field may come in the query string instead (the query's wins); a code given here is checked either way."""

    text: str | None = None
    source_language: LanguageCode | None = None
    target_language: LanguageCode | None = None


def finite(value: float, param: str) -> float:
    if not math.isfinite(value):
        raise InvalidInput(f"'{param}' must be a finite number", about=param)
    return value


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
        decoded = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise InvalidInput("The request body is not valid JSON") from None
    return convert(decoded, kind, where="JSON field", strict=True)


def required_text(value: str | None, param: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"Missing required parameter: '{param}'", about=param)
    return text
