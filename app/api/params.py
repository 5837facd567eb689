"""Request parsing for both dialects: OpenAI's form options, Reflector's upload plan, query and JSON parameters.

Every refusal is `InvalidInput` (or `InputTooLarge`) about the parameter, so it leaves as a 400 naming it.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal, TypeVar, cast, get_args
from urllib.parse import unquote_to_bytes

import msgspec

from app import render
from app.api.forms import MAX_FIELD_BYTES, Form, UploadedFile, body_chunks
from app.api.requests import AnyRequest
from app.diarization.speakers import MAX_KNOWN_SPEAKERS
from app.errors import InputTooLarge, InvalidInput
from app.settings import ResponseFormat, parse_flag
from app.transcription.pipeline import Chunking

S = TypeVar("S", bound=msgspec.Struct)
RESPONSE_FORMATS: tuple[str, ...] = get_args(ResponseFormat)
Granularity = Literal["word", "segment"]
GRANULARITIES: tuple[str, ...] = get_args(Granularity)
MAX_JSON_BYTES = 256 * 1024
REFLECTOR_FILE_FIELDS = ("files", "files[]")
# Model names Reflector sends that mean "this server's model" unless an operator allowed that exact name.
REFLECTOR_DEFAULT_MODELS = frozenset({"nvidia/parakeet-tdt-0.6b-v2", "nvidia/parakeet-tdt-0.6b-v3", "whisper-1"})


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


def listed(form: Form, *names: str) -> list[str]:
    """A list field's values. An empty value is no item: HTML forms (and Swagger UI's "Try it out") send an empty
    list as one empty field."""
    return [value for value in form.all(*names) if value != ""]


def parse_options(form: Form, default_format: ResponseFormat) -> Options:
    response_format = (form.first("response_format") or default_format).strip()
    if response_format not in RESPONSE_FORMATS:
        raise InvalidInput(
            f"Invalid response_format '{response_format}': use one of {', '.join(RESPONSE_FORMATS)}",
            about="response_format",
        )
    granularities = listed(form, "timestamp_granularities[]", "timestamp_granularities")
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


MAX_KEYWORDS = 50  # the form itself takes at most 64 parts
MAX_KEYWORD_CHARS = 100


def parse_keywords(form: Form) -> tuple[str, ...]:
    """`keywords[]` (or `keywords`): words or names to favour, in order, blanks and repeats dropped."""
    keywords = tuple(dict.fromkeys(k.strip() for k in form.all("keywords[]", "keywords") if k.strip()))
    if len(keywords) > MAX_KEYWORDS:
        raise InvalidInput(f"Send at most {MAX_KEYWORDS} keywords, got {len(keywords)}", about="keywords")
    if any(len(k) > MAX_KEYWORD_CHARS for k in keywords):
        raise InvalidInput(f"Each keyword must be at most {MAX_KEYWORD_CHARS} characters", about="keywords")
    return keywords


def single_file(form: Form) -> UploadedFile:
    files = form.files_named("file")
    if not files:
        raise InvalidInput("Missing required parameter: 'file' (the audio to transcribe)", about="audio")
    if len(files) > 1:
        raise InvalidInput("Send exactly one 'file'", about="audio")
    return files[0]


CHUNKING = "chunking_strategy"
SERVER_VAD_KEYS = ("type", "prefix_padding_ms", "silence_duration_ms", "threshold")
MAX_PADDING_MS = 2000
MAX_SILENCE_MS = 5000


def parse_chunking(form: Form) -> Chunking | None:
    """OpenAI's `chunking_strategy`: "auto" (None: the server's settings) or a server_vad object, sent as JSON in
    `chunking_strategy` or, as the SDK sends objects, as bracketed keys (`chunking_strategy[type]=server_vad`)."""
    plain = form.first(CHUNKING)
    bracketed = {
        name[len(CHUNKING) + 1 : -1]: values[0]
        for name, values in form.fields.items()
        if name.startswith(CHUNKING + "[") and name.endswith("]") and values
    }
    if plain is not None and bracketed:
        raise InvalidInput(f"Send '{CHUNKING}' either as a value or as bracketed keys, not both", about=CHUNKING)
    fields: Mapping[str, object]
    if bracketed:
        fields = bracketed
    elif plain is None or plain.strip() == "auto":
        return None
    else:
        try:
            decoded = msgspec.json.decode(plain.strip())
        except msgspec.DecodeError:
            decoded = None
        if not isinstance(decoded, dict):
            raise InvalidInput(
                f"Invalid {CHUNKING} '{plain[:40]}': use \"auto\" or an object "
                '{"type": "server_vad", "prefix_padding_ms", "silence_duration_ms", "threshold"}',
                about=CHUNKING,
            )
        fields = decoded
    unknown = sorted(set(fields) - set(SERVER_VAD_KEYS))
    if unknown:
        raise InvalidInput(f"Unknown {CHUNKING} key '{unknown[0]}': use {', '.join(SERVER_VAD_KEYS)}", about=CHUNKING)
    if fields.get("type") != "server_vad":
        raise InvalidInput(f'{CHUNKING} objects need "type": "server_vad"', about=CHUNKING)
    defaults = Chunking()
    threshold = _strategy_number(fields, "threshold", 0.0, 1.0)
    padding = _strategy_number(fields, "prefix_padding_ms", 0, MAX_PADDING_MS)
    silence = _strategy_number(fields, "silence_duration_ms", 0, MAX_SILENCE_MS)
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise InvalidInput(f"{CHUNKING}.threshold must be between 0 and 1 (exclusive)", about=CHUNKING)
    return Chunking(
        threshold=threshold,
        padding_seconds=defaults.padding_seconds if padding is None else padding / 1000,
        min_silence_seconds=defaults.min_silence_seconds if silence is None else silence / 1000,
    )


def _strategy_number(fields: Mapping[str, object], key: str, low: float, high: float) -> float | None:
    raw = fields.get(key)
    if raw is None:
        return None
    try:
        value = float(raw) if isinstance(raw, (str, int, float)) and not isinstance(raw, bool) else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidInput(f"{CHUNKING}.{key} must be a number from {low:g} to {high:g}, got '{raw}'", about=CHUNKING)
    return value


KNOWN_NAMES = "known_speaker_names"
KNOWN_REFERENCES = "known_speaker_references"
DATA_URL = re.compile(rb"^data:(?P<mime>[\w.+/-]*)(?P<params>(?:;[\w.+-]+=[\w.+-]+)*)(?P<base64>;base64)?,")
MAX_NAME_CHARS = 64
# A name as sent: not blank, no control characters (the contract states this same pattern).
# "" is allowed by the contract's pattern and means no name (see `listed`).
SPEAKER_NAME = re.compile(r"^(?:|\s*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*)$")


class KnownSpeakers(msgspec.Struct, frozen=True):
    """The voices a request names, and their references (None: saved voices by name): data URLs as sent (a text
    field, written to a file: filename "") or audio files uploaded in that field."""

    names: tuple[str, ...]
    references: tuple[UploadedFile, ...] | None


def parse_known_speakers(form: Form) -> KnownSpeakers | None:
    sent = listed(form, KNOWN_NAMES + "[]", KNOWN_NAMES)
    references = [  # an empty text field is no reference (see `listed`)
        f for f in form.files_named(KNOWN_REFERENCES + "[]", KNOWN_REFERENCES) if f.filename or f.size
    ]
    if not sent and not references:
        return None
    if not sent:
        raise InvalidInput(
            f"'{KNOWN_REFERENCES}[]' needs '{KNOWN_NAMES}[]' (one name per reference)", about=KNOWN_NAMES
        )
    for name in sent:
        if len(name) > MAX_NAME_CHARS or not SPEAKER_NAME.fullmatch(name):
            raise InvalidInput(
                f"Each of '{KNOWN_NAMES}[]' must be a name of 1-{MAX_NAME_CHARS} characters, not blank, without "
                "control characters",
                about=KNOWN_NAMES,
            )
    names = [n.strip() for n in sent]
    if references and len(references) != len(names):
        raise InvalidInput(
            f"Got {len(names)} {KNOWN_NAMES}[] but {len(references)} {KNOWN_REFERENCES}[]: send one reference per "
            "name (or none, to use saved voices)",
            about=KNOWN_REFERENCES,
        )
    return KnownSpeakers(tuple(names), tuple(references) if references else None)


# The forms as the parsers above read them. Nothing parses into these Structs (the streaming reader in forms.py and
# the functions above do); they are what the OpenAPI contract is generated from (app/api/contract.py), and they use
# the same enums and limits as the parsers, so the two cannot drift. Field names are the form's own.
Text = Annotated[str, msgspec.Meta(description=f"At most {MAX_FIELD_BYTES // 1024} KB of UTF-8")]


class ServerVadChunking(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`chunking_strategy` as an object: cut the audio at pauses found with these voice-activity settings."""

    type: Literal["server_vad"]
    threshold: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] | msgspec.UnsetType = msgspec.UNSET
    prefix_padding_ms: Annotated[float, msgspec.Meta(ge=0, le=MAX_PADDING_MS)] | msgspec.UnsetType = msgspec.UNSET
    silence_duration_ms: Annotated[float, msgspec.Meta(ge=0, le=MAX_SILENCE_MS)] | msgspec.UnsetType = msgspec.UNSET


class TranslationForm(msgspec.Struct, kw_only=True):
    """POST /v1/audio/translations (OpenAI's form): speech in any language the model knows, English text out."""

    file: Annotated[bytes, msgspec.Meta(description="The audio: any container and codec FFmpeg decodes")]
    model: str = ""
    prompt: Text = ""
    response_format: ResponseFormat = "json"
    temperature: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    stream: bool = False
    keywords: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=MAX_KEYWORD_CHARS)]], msgspec.Meta(max_length=MAX_KEYWORDS)
    ] = msgspec.field(default_factory=list, name="keywords[]")


class TranscriptionForm(TranslationForm, kw_only=True):
    """POST /v1/audio/transcriptions in OpenAI's form (only `file`, never `files`/`files[]`/`batch`)."""

    language: str = ""
    timestamp_granularities: list[Granularity | Literal[""]] = msgspec.field(
        default_factory=list, name="timestamp_granularities[]"
    )
    chunking_strategy: Literal["auto"] | ServerVadChunking = "auto"
    known_speaker_names: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS, pattern=SPEAKER_NAME.pattern)]],
        msgspec.Meta(max_length=MAX_KNOWN_SPEAKERS, extra_json_schema={"uniqueItems": True}),
    ] = msgspec.field(default_factory=list, name="known_speaker_names[]")
    known_speaker_references: Annotated[list[str], msgspec.Meta(max_length=MAX_KNOWN_SPEAKERS)] = msgspec.field(
        default_factory=list, name="known_speaker_references[]"
    )


def decode_data_url(path: Path) -> Path:
    """Replace a file holding a data URL (`data:audio/wav;base64,...`) with the bytes it carries; returns the path."""
    raw = path.read_bytes().strip()
    match = DATA_URL.match(raw[:256])
    if match is None:
        raise InvalidInput(
            f"Each of '{KNOWN_REFERENCES}[]' must be a data URL such as 'data:audio/wav;base64,...'",
            about=KNOWN_REFERENCES,
        )
    payload = raw[match.end() :]
    try:
        data = base64.b64decode(payload, validate=True) if match.group("base64") else _percent_decoded(payload)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"A '{KNOWN_REFERENCES}[]' data URL is not valid base64", about=KNOWN_REFERENCES) from None
    if not data:
        raise InvalidInput(f"A '{KNOWN_REFERENCES}[]' data URL carries no audio", about=KNOWN_REFERENCES)
    path.write_bytes(data)
    return path


def _percent_decoded(payload: bytes) -> bytes:
    return unquote_to_bytes(payload)


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
