"""Request parsing: OpenAI's upload form (into its Structs), and the flags of every route.
Reflector's own forms and JSON bodies are in `app/api/reflector_params.py`.

Every refusal is `InvalidInput` about the parameter, so it leaves as a 400 naming it.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, TypeVar, get_args

import msgspec

from app import render
from app.api.forms import MAX_FIELD_BYTES, Form, UploadedFile
from app.audio.chunking import Chunking
from app.diarization.speakers import MAX_KNOWN_SPEAKERS
from app.errors import InvalidInput
from app.settings import ResponseFormat, parse_flag
from app.transcript import Task
from app.transcription.request import TranscriptionRequest

F = TypeVar("F", bound="TranslationFields")
T = TypeVar("T")
RESPONSE_FORMATS: tuple[str, ...] = get_args(ResponseFormat)
Granularity = Literal["word", "segment"]
GRANULARITIES: tuple[str, ...] = get_args(Granularity)
# Formats whose answer shows times: only they need word timings (Whisper's costly alignment, ADR 21); they also make
# Whisper's segments, and so a stream's segment events, follow the speech more finely. diarized_json splits
# segments at speaker changes by word times.
TIMED_FORMATS = ("verbose_json", "srt", "vtt", "diarized_json")


def parse_bool(value: str | None, param: str) -> bool:
    """A form or query flag: true/false, 1/0, yes/no, on/off; absent or empty is false."""
    if value is None or not value.strip():
        return False
    try:
        return parse_flag(value)
    except ValueError:
        raise InvalidInput(f"Invalid value for '{param}': expected true or false, got '{value}'", about=param) from None


KNOWN_NAMES = "known_speaker_names"
KNOWN_REFERENCES = "known_speaker_references"
MAX_NAME_CHARS = 64
# A name as sent: not blank, no control characters (the contract states this same pattern).
# "" is allowed by the contract's pattern and means no name (see `listed`).
SPEAKER_NAME = re.compile(r"^(?:|\s*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*)$")


# --- OpenAI ------------------------------------------------------------------------------------------------------

MAX_KEYWORDS = 50  # the form itself takes at most 64 parts
MAX_KEYWORD_CHARS = 100
MAX_LANGUAGES = 20
MAX_PADDING_MS = 2000
MAX_SILENCE_MS = 5000
CHUNKING = "chunking_strategy"
Text = Annotated[str, msgspec.Meta(description=f"At most {MAX_FIELD_BYTES // 1024} KB of UTF-8")]


class ServerVadChunking(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`chunking_strategy` as an object: cut the audio at pauses found with these voice-activity settings."""

    type: Literal["server_vad"]
    threshold: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] | msgspec.UnsetType = msgspec.UNSET
    prefix_padding_ms: Annotated[float, msgspec.Meta(ge=0, le=MAX_PADDING_MS)] | msgspec.UnsetType = msgspec.UNSET
    silence_duration_ms: Annotated[float, msgspec.Meta(ge=0, le=MAX_SILENCE_MS)] | msgspec.UnsetType = msgspec.UNSET


class TranslationFields(msgspec.Struct, kw_only=True):
    """The text fields of POST /v1/audio/translations (OpenAI's form). Field names are the form's own; a list field
    is also read without its `[]`."""

    model: str = ""
    prompt: Text = ""
    response_format: ResponseFormat | msgspec.UnsetType = msgspec.UNSET  # unset: DEFAULT_RESPONSE_FORMAT
    temperature: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    stream: bool = False
    keywords: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=MAX_KEYWORD_CHARS)]], msgspec.Meta(max_length=MAX_KEYWORDS)
    ] = msgspec.field(default_factory=list, name="keywords[]")


class TranscriptionFields(TranslationFields, kw_only=True):
    """The text fields of POST /v1/audio/transcriptions in OpenAI's form. `chunking_strategy` is parsed apart
    (`parse_chunking`: "auto", a JSON object or bracketed keys)."""

    language: str = ""
    # OpenAI's `languages[]`: the languages the audio may be in (one: the language; several: auto detects among them)
    languages: Annotated[list[str], msgspec.Meta(max_length=MAX_LANGUAGES)] = msgspec.field(
        default_factory=list, name="languages[]"
    )
    # OpenAI's `include[]`: `logprobs` adds each token's log probability to a json answer
    include: list[Literal["logprobs"]] = msgspec.field(default_factory=list, name="include[]")
    timestamp_granularities: list[Granularity | Literal[""]] = msgspec.field(
        default_factory=list, name="timestamp_granularities[]"
    )
    known_speaker_names: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS, pattern=SPEAKER_NAME.pattern)]],
        msgspec.Meta(max_length=MAX_KNOWN_SPEAKERS, extra_json_schema={"uniqueItems": True}),
    ] = msgspec.field(default_factory=list, name="known_speaker_names[]")


def form_fields(form: Form, kind: type[F]) -> F:
    """The form's text fields converted into `kind` (strings coerced to its types; an empty value is no value, and
    an empty list item no item: HTML forms and Swagger UI's "Try it out" send them); a refusal names its field."""
    data: dict[str, object] = {}
    for field in msgspec.structs.fields(kind):
        name = field.encode_name
        if name.endswith("[]"):
            data[name] = [value for value in form.all(name, name[:-2]) if value != ""]
            continue
        value = form.first(name)
        if value is None or value == "":
            continue
        data[name] = parse_bool(value, name) if field.type is bool else value
    return convert(data, kind, where="form field")


def convert(data: object, kind: type[T], *, where: str, about: str | None = None, strict: bool = False) -> T:
    """`msgspec.convert` (lax unless `strict`: strings to numbers) with a refusal naming the parameter at the error's
    path."""
    try:
        return msgspec.convert(data, kind, strict=strict)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).rpartition(" - at ")
        field = path.strip("`").removeprefix("$").lstrip(".").split("[", 1)[0].split(".", 1)[0]
        param = about or field.removesuffix("[]") or None
        raise InvalidInput(f"Invalid {where} '{field or about}': {message or exc}", about=param) from None


class Options(msgspec.Struct, frozen=True, kw_only=True):
    """How an OpenAI-form request wants its answer."""

    response_format: ResponseFormat
    words: bool
    segments: bool
    stream: bool
    logprobs: bool = False  # include[]=logprobs: json with each token's log probability


def parse_options(fields: TranslationFields, default_format: ResponseFormat) -> Options:
    granularities = fields.timestamp_granularities if isinstance(fields, TranscriptionFields) else []
    words, segments = render.verbose_flags([g for g in granularities if g])
    response_format = default_format if fields.response_format is msgspec.UNSET else fields.response_format
    logprobs = isinstance(fields, TranscriptionFields) and "logprobs" in fields.include
    if logprobs and response_format != "json":  # as at OpenAI
        raise InvalidInput("include[]=logprobs needs response_format=json", about="include")
    return Options(
        response_format=response_format, words=words, segments=segments, stream=fields.stream, logprobs=logprobs
    )


def transcription_request(form: Form, fields: TranslationFields, task: Task, options: Options) -> TranscriptionRequest:
    """The transcription an OpenAI-form request asks for (translations take no language: the model detects it)."""
    transcription = isinstance(fields, TranscriptionFields) and task == "transcribe"
    language = fields.language if isinstance(fields, TranscriptionFields) and transcription else ""
    languages = fields.languages if isinstance(fields, TranscriptionFields) and transcription else []
    return TranscriptionRequest(
        model=fields.model,
        language=language or None,
        prompt=fields.prompt or None,
        task=task,
        words=options.response_format in TIMED_FORMATS,
        keywords=tuple(dict.fromkeys(k.strip() for k in fields.keywords if k.strip())),
        languages=tuple(item.strip() for item in languages if item.strip()),
        logprobs=options.logprobs,
        chunking=parse_chunking(form),
    )


def single_file(form: Form) -> UploadedFile:
    files = form.files_named("file")
    if not files:
        raise InvalidInput("Missing required parameter: 'file' (the audio to transcribe)", about="audio")
    if len(files) > 1:
        raise InvalidInput("Send exactly one 'file'", about="audio")
    return files[0]


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
    fields: object = bracketed
    if not bracketed:
        if plain is None or plain.strip() == "auto":
            return None
        try:
            fields = msgspec.json.decode(plain.strip())
        except msgspec.DecodeError:
            fields = None
        if not isinstance(fields, dict):
            raise InvalidInput(
                f"Invalid {CHUNKING} '{plain[:40]}': use \"auto\" or an object "
                '{"type": "server_vad", "prefix_padding_ms", "silence_duration_ms", "threshold"}',
                about=CHUNKING,
            )
    strategy = convert(fields, ServerVadChunking, where=CHUNKING, about=CHUNKING)
    defaults = Chunking()
    return Chunking(
        threshold=None if strategy.threshold is msgspec.UNSET else strategy.threshold,
        padding_seconds=defaults.padding_seconds
        if strategy.prefix_padding_ms is msgspec.UNSET
        else strategy.prefix_padding_ms / 1000,
        min_silence_seconds=defaults.min_silence_seconds
        if strategy.silence_duration_ms is msgspec.UNSET
        else strategy.silence_duration_ms / 1000,
    )


class KnownSpeakers(msgspec.Struct, frozen=True):
    """The voices a request names, and their references (None: saved voices by name): data URLs as sent (a text
    field, written to a file: filename "") or audio files uploaded in that field."""

    names: tuple[str, ...]
    references: tuple[UploadedFile, ...] | None


def parse_known_speakers(form: Form, fields: TranscriptionFields) -> KnownSpeakers | None:
    """The voices a request names and their references: one reference per name, or none (saved voices)."""
    references = [  # an empty text field is no reference (see `form_fields`)
        f for f in form.files_named(KNOWN_REFERENCES + "[]", KNOWN_REFERENCES) if f.filename or f.size
    ]
    sent = fields.known_speaker_names
    if not sent and not references:
        return None
    if not sent:
        raise InvalidInput(
            f"'{KNOWN_REFERENCES}[]' needs '{KNOWN_NAMES}[]' (one name per reference)", about=KNOWN_NAMES
        )
    names = [n.strip() for n in sent]
    if references and len(references) != len(names):
        raise InvalidInput(
            f"Got {len(names)} {KNOWN_NAMES}[] but {len(references)} {KNOWN_REFERENCES}[]: send one reference per "
            "name (or none, to use saved voices)",
            about=KNOWN_REFERENCES,
        )
    return KnownSpeakers(tuple(names), tuple(references) if references else None)


# The upload forms as the OpenAPI contract declares them (app/api/contract.py): the text fields above plus the files.


class TranslationForm(TranslationFields, kw_only=True):
    """POST /v1/audio/translations (OpenAI's form): speech in any language the model knows, English text out."""

    file: Annotated[bytes, msgspec.Meta(description="The audio: any container and codec FFmpeg decodes")]


class TranscriptionForm(TranscriptionFields, kw_only=True):
    """POST /v1/audio/transcriptions in OpenAI's form (only `file`, never `files`/`files[]`/`batch`)."""

    file: Annotated[bytes, msgspec.Meta(description="The audio: any container and codec FFmpeg decodes")]
    chunking_strategy: Literal["auto"] | ServerVadChunking = "auto"
    known_speaker_references: Annotated[list[str], msgspec.Meta(max_length=MAX_KNOWN_SPEAKERS)] = msgspec.field(
        default_factory=list, name="known_speaker_references[]"
    )


class JobForm(TranscriptionForm, kw_only=True):
    """POST /v1/jobs: the transcription form (never streamed) and what to do with the speech."""

    task: Task = "transcribe"
