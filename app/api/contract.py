"""The OpenAPI contract of every route: request bodies, parameters, responses (each media type, each error status with
its headers) and the Bearer security scheme.

Generated, never written by hand: the JSON schemas come from the msgspec types the code itself uses (the forms in
`app/api/params.py`, the bodies in `app/render/`, OpenAI's `ErrorBody`), the statuses from the error table in
`app/api/errors.py`. Two halves, because route handlers are module-level and settings are per app:
- `declared(...)` gives a route its `operation_class`: an `Operation` whose body, parameters and responses are
  references into the components (`#/components/schemas/...`), replacing what Litestar would infer (it sees only
  `request`, since the streaming parser reads the body itself, and would guess one 200).
- `components(services)` builds those components for one app: the schemas, with the model names, languages, upload
  limit and default format of its settings, and the security scheme when API_KEY is set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)

from app.api.deps import Services
from app.api.errors import HTTP_ERRORS, Unauthorized
from app.api.jobs import CLIENT_CLOSED_REQUEST, MODEL_HEADER, ClientGone
from app.api.params import TranscriptionForm, TranslationForm
from app.api.reflector_params import LANGUAGE_CODE, REFLECTOR_DEFAULT_MODELS, FromUrlBody, ReflectorForm, TranslateBody
from app.api.url_fetch import HTTP_URL_PATTERN
from app.diarization.diarize import DiarizationSegment
from app.errors import (
    InputTooLarge,
    InvalidInput,
    ModelUnavailable,
    QueueFull,
    SourceFailed,
    SourceNotFound,
    SourceTimeout,
    UploadStalled,
)
from app.languages import LANGUAGES
from app.render.formats import DiarizedBody, JsonBody, VerboseBody
from app.render.reflector import ReflectorResults, ReflectorTranscript, TranslatedText
from app.render.sse import DeltaEvent, DoneEvent, ErrorBody, ErrorEvent, SegmentEvent
from app.render.whisper_asr import OUTPUTS, DetectedLanguage
from app.settings import AUTO_MODEL
from app.transcription.service import DEFAULT_MODEL_ALIASES

BEARER = "bearerAuth"
BASIC = "basicAuth"  # the API key as the password (any user name): Bazarr's http://user:KEY@host:8000
API_DESCRIPTION = """A self-hosted, OpenAI-compatible speech-to-text server (and Reflector's GPU Model API).

Every error is OpenAI's `{"error": {"message", "type", "param", "code"}}`. With API_KEY set, send
`Authorization: Bearer <API_KEY>` (the Authorize button here; HTTP Basic with the key as the password works too);
`/health`, `/metrics` and these docs are open.

**whisper-asr-webservice's `POST /asr` and `POST /detect-language`** (Bazarr's whisperai provider, subgen).

**Wyoming** (Home Assistant's speech-to-text protocol) is served on its own TCP port (WYOMING_PORT), without
authentication.

**WebSocket `GET /v1/realtime?intent=transcription`** (not an OpenAPI operation: OpenAPI cannot describe a
WebSocket): OpenAI's Realtime transcription protocol. Client events `session.update`, `input_audio_buffer.append`
(base64 PCM16 mono, 24 kHz by default), `.commit`, `.clear`; server events `session.created`/`.updated`,
`input_audio_buffer.speech_started`/`.speech_stopped`/`.committed`/`.cleared`,
`conversation.item.input_audio_transcription.delta`/`.completed`/`.failed`, `error`. Auth: the Bearer header, or the
subprotocol `openai-insecure-api-key.<API_KEY>` for browsers."""
REF = "#/components/schemas/{name}"
Headers = dict[str, OpenAPIHeader | Reference]


class ErrorResponse(msgspec.Struct):
    """Every error body: OpenAI's error object under `error`."""

    error: ErrorBody


class AsrForm(msgspec.Struct, kw_only=True):
    """POST /asr and /detect-language (whisper-asr-webservice's form): the audio in `audio_file`."""

    audio_file: Annotated[
        bytes,
        msgspec.Meta(description="A media file FFmpeg decodes (encode=true), or raw 16 kHz mono s16le (encode=false)"),
    ]


class DiarizationResponse(msgspec.Struct):
    """POST /diarize: who spoke when (Reflector's shape)."""

    diarization: list[DiarizationSegment]


StreamEvent = DeltaEvent | DoneEvent | SegmentEvent | ErrorEvent
SCHEMA_TYPES: tuple[Any, ...] = (
    TranscriptionForm,
    TranslationForm,
    ReflectorForm,
    FromUrlBody,
    TranslateBody,
    TranslatedText,
    JsonBody,
    VerboseBody,
    DiarizedBody,
    ReflectorTranscript,
    ReflectorResults,
    DiarizationResponse,
    StreamEvent,
    ErrorResponse,
    AsrForm,
    DetectedLanguage,
)


@dataclass
class RawSchema(Schema):
    """A JSON schema as msgspec generated it (OpenAPI 3.1 schemas are JSON Schema 2020-12)."""

    raw: dict[str, Any] = field(default_factory=dict)

    def to_schema(self) -> dict[str, Any]:
        return self.raw


@dataclass
class ContractComponents(Components):
    """Litestar sets `schemas` to those it inferred itself; the contract's are added when the document is written."""

    contract: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def _exclude_fields(self) -> set[str]:
        return {"contract"}

    def to_schema(self) -> dict[str, Any]:
        out = super().to_schema()
        out["schemas"] = {**out.get("schemas", {}), **self.contract}
        return out


def ref(name: str) -> Reference:
    return Reference(ref=REF.format(name=name))


def _for_forms(node: object) -> object:
    """msgspec writes `bytes` as base64 text (a multipart file part is binary), and an enum of strings without its
    type (Swagger UI would show "any")."""
    if isinstance(node, dict):
        if node.get("contentEncoding") == "base64":
            rest = {k: v for k, v in node.items() if k != "contentEncoding"}
            return {**rest, "format": "binary", "contentMediaType": "application/octet-stream"}
        typed = {"type": "string"} if "enum" in node and all(isinstance(v, str) for v in node["enum"]) else {}
        return {**typed, **{k: _for_forms(v) for k, v in node.items()}}
    if isinstance(node, list):
        return [_for_forms(v) for v in node]
    return node


# --- errors: statuses from the one table ---------------------------------------------------------------------------


def status_of(error: type[Exception]) -> int:
    if error is ClientGone:
        return CLIENT_CLOSED_REQUEST
    return next(status for cls, status, _ in HTTP_ERRORS if issubclass(error, cls))


ERROR_WHEN: Mapping[type[Exception], str] = {
    InvalidInput: "A parameter is missing or invalid, or the audio cannot be decoded (`param` names it)",
    Unauthorized: "API_KEY is set and the request has no or a wrong `Authorization: Bearer` key",
    SourceNotFound: "The audio URL answered 404",
    UploadStalled: "The request body made no progress for UPLOAD_IDLE_TIMEOUT_SECONDS",
    InputTooLarge: "The upload (or download) is larger than MAX_UPLOAD_MB, or the JSON body too large",
    ClientGone: "The client closed the connection before the answer (logged; nobody reads this)",
    SourceFailed: "The audio URL could not be fetched",
    QueueFull: "The queue (MAX_QUEUE) or the upload slots (MAX_UPLOADS) are full: retry after Retry-After seconds",
    ModelUnavailable: "The model cannot be loaded or fetched on this server",
    SourceTimeout: "The audio URL did not answer within URL_TIMEOUT_SECONDS",
}
ERROR_HEADERS: Mapping[type[Exception], Headers] = {
    Unauthorized: {
        "WWW-Authenticate": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING), required=True, description="`Bearer realm=...`"
        )
    },
    QueueFull: {
        "Retry-After": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.INTEGER, minimum=0), description="Seconds to wait before retrying (503)"
        )
    },
}
UPLOAD_ERRORS: tuple[type[Exception], ...] = (
    InvalidInput,
    Unauthorized,
    UploadStalled,
    InputTooLarge,
    ClientGone,
    QueueFull,
    ModelUnavailable,
)
URL_ERRORS = (*UPLOAD_ERRORS, SourceNotFound, SourceFailed, SourceTimeout)


def error_responses(errors: Iterable[type[Exception]]) -> dict[str, OpenAPIResponse]:
    by_status: dict[int, list[type[Exception]]] = {}
    for error in errors:
        by_status.setdefault(status_of(error), []).append(error)
    responses = {}
    for status, kinds in sorted(by_status.items()):
        headers: Headers = {name: h for kind in kinds for name, h in ERROR_HEADERS.get(kind, {}).items()}
        responses[str(status)] = OpenAPIResponse(
            description="; or ".join(ERROR_WHEN[kind] for kind in kinds),
            content={"application/json": OpenAPIMediaType(schema=ref("ErrorResponse"))},
            headers=headers or None,
        )
    return responses


# --- responses -----------------------------------------------------------------------------------------------------

MODEL_USED: Headers = {
    MODEL_HEADER: OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), description="The model that answered")
}
TEXT = Schema(type=OpenAPIType.STRING)
STREAM_DESCRIPTION = (
    "With `stream=true`: server-sent events, each `data: {json}` of one of the `StreamEvent` shapes "
    "(`transcript.text.delta`, `transcript.text.segment` for timed formats, then `transcript.text.done`, or "
    "`error`), then `data: [DONE]`; `: keep-alive` comments while nothing else is sent."
)


def transcript_ok(*, reflector: bool, diarized: bool) -> OpenAPIResponse:
    shapes = ["JsonBody", "VerboseBody", *(["DiarizedBody"] if diarized else [])]
    shapes += ["ReflectorTranscript", "ReflectorResults"] if reflector else []
    return OpenAPIResponse(
        description=(
            "`json` (JsonBody), `verbose_json` (VerboseBody)"
            + (", `diarized_json` (DiarizedBody)" if diarized else "")
            + (", Reflector's form: one ReflectorTranscript or ReflectorResults" if reflector else "")
            + "; `text` and `srt` as text/plain, `vtt` as text/vtt. "
            + STREAM_DESCRIPTION
        ),
        content={
            "application/json": OpenAPIMediaType(
                schema=RawSchema(raw={"anyOf": [{"$ref": REF.format(name=s)} for s in shapes]})
            ),
            "text/plain": OpenAPIMediaType(schema=TEXT),
            "text/vtt": OpenAPIMediaType(schema=TEXT),
            "text/event-stream": OpenAPIMediaType(schema=ref("ServerSentEvent")),
        },
        headers=MODEL_USED,
    )


def json_ok(name: str, description: str, headers: Headers | None = None) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description, content={"application/json": OpenAPIMediaType(schema=ref(name))}, headers=headers
    )


def multipart(name: str) -> RequestBody:
    return RequestBody(content={"multipart/form-data": OpenAPIMediaType(schema=ref(name))}, required=True)


def query(name: str, schema: Schema | Reference, description: str, *, required: bool = False) -> Parameter:
    return Parameter(name=name, param_in="query", schema=schema, description=description, required=required)


# --- the routes' operations ----------------------------------------------------------------------------------------


def declared(
    responses: Mapping[str, OpenAPIResponse],
    *,
    body: RequestBody | None = None,
    parameters: Sequence[Parameter] = (),
    public: bool = False,
) -> type[Operation]:
    """An `operation_class` for a route: its body, parameters and responses as declared here, not inferred."""

    @dataclass
    class Declared(Operation):
        def __post_init__(self) -> None:
            self.request_body = body
            self.parameters = list(parameters) or None
            self.responses = dict(responses)
            if public:
                self.security = []  # open even when API_KEY is set

    return Declared


TRANSCRIPTION = declared(
    {"200": transcript_ok(reflector=True, diarized=True), **error_responses(UPLOAD_ERRORS)},
    body=multipart("TranscriptionForm"),
)
TRANSLATION = declared(
    {"200": transcript_ok(reflector=False, diarized=False), **error_responses(UPLOAD_ERRORS)},
    body=multipart("TranslationForm"),
)
FROM_URL = declared(
    {
        "200": json_ok("ReflectorTranscript", "The transcript with word timings", MODEL_USED),
        **error_responses(URL_ERRORS),
    },
    body=RequestBody(content={"application/json": OpenAPIMediaType(schema=ref("FromUrlBody"))}, required=True),
)
AUDIO_URL = Schema(type=OpenAPIType.STRING, pattern=HTTP_URL_PATTERN, description="The audio's http(s) URL")
LANGUAGE = Schema(type=OpenAPIType.STRING, pattern=LANGUAGE_CODE.pattern, description="ISO 639-1 (or -3) code")
DIARIZE = declared(
    {"200": json_ok("DiarizationResponse", "Who spoke when"), **error_responses(URL_ERRORS)},
    parameters=[
        query("audio_file_url", AUDIO_URL, "The audio's http(s) URL", required=True),
        query("timestamp", Schema(type=OpenAPIType.NUMBER), "Seconds added to every time (default 0)"),
    ],
)
TRANSLATE = declared(
    {"200": json_ok("TranslatedText", "The text in both languages"), **error_responses(UPLOAD_ERRORS)},
    body=RequestBody(content={"application/json": OpenAPIMediaType(schema=ref("TranslateBody"))}),
    parameters=[
        query("text", TEXT, "The text (or in the JSON body)"),
        query("source_language", LANGUAGE, "Its language code (or in the JSON body)"),
        query("target_language", LANGUAGE, "The language to translate into (or in the JSON body)"),
    ],
)
FLAG = Schema(type=OpenAPIType.BOOLEAN)
ASR_QUERY = [
    query("task", ref("AsrTask"), "transcribe (default), or translate into English (a multilingual Whisper)"),
    query("language", ref("AsrLanguage"), "The spoken language (ISO 639-1); empty or omitted: detected"),
    query("initial_prompt", TEXT, "Text the speech continues (Whisper)"),
    query("word_timestamps", FLAG, "JSON segments carry their words with timings"),
    query("vad_filter", FLAG, "Accepted: Silero VAD always runs"),
    query("diarize", FLAG, "Speaker labels: `[A]: ` before each speaker's text, `speaker` in JSON segments"),
]
ENCODE = query("encode", FLAG, "true (default): audio_file is a media file; false: raw 16 kHz mono s16le PCM")
ASR = declared(
    {
        "200": OpenAPIResponse(
            description="The transcript as `output` asks (all as text/plain, as whisper-asr-webservice sends them)",
            content={"text/plain": OpenAPIMediaType(schema=TEXT)},
            headers={
                **MODEL_USED,
                "Content-Disposition": OpenAPIHeader(
                    schema=TEXT, description='`attachment; filename="<upload name>.<output>"`'
                ),
            },
        ),
        **error_responses(UPLOAD_ERRORS),
    },
    body=multipart("AsrForm"),
    parameters=[
        *ASR_QUERY,
        query("output", Schema(type=OpenAPIType.STRING, enum=list(OUTPUTS)), "txt (default), vtt, srt, tsv or json"),
        ENCODE,
    ],
)
DETECT_LANGUAGE = declared(
    {"200": json_ok("DetectedLanguage", "The language of the first speech"), **error_responses(UPLOAD_ERRORS)},
    body=multipart("AsrForm"),
    parameters=[ENCODE],
)
STATUS = declared(
    {
        "200": OpenAPIResponse(
            description='`{"version": ...}` (Bazarr\'s Test Connection button shows it)',
            content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))},
        )
    },
    public=True,
)
MODELS = declared({"200": json_ok("ModelList", "The models this server may use"), **error_responses([Unauthorized])})
HEALTH = declared(
    {
        "200": OpenAPIResponse(
            description="Liveness and state",
            content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))},
        )
    },
    public=True,
)
METRICS = declared(
    {
        "200": OpenAPIResponse(
            description="Prometheus text format", content={"text/plain": OpenAPIMediaType(schema=TEXT)}
        )
    },
    public=True,
)


# --- the components of one app -------------------------------------------------------------------------------------


MODEL_ALIASES = sorted(DEFAULT_MODEL_ALIASES)  # omitted, empty or an OpenAI alias: MODEL


def language_groups(services: Services) -> list[tuple[list[str], list[str]]]:
    """(model values, the language codes they take) per set of languages; "" (detect) is always one. The first group
    is MODEL's, with OpenAI's aliases (and an omitted model)."""
    engines = services.settings.engines
    groups: dict[tuple[str, ...], list[str]] = {}
    names = [*engines.allowed_models, *([AUTO_MODEL] if services.transcriber.router is not None else [])]
    default_languages: tuple[str, ...] = ()
    for name in names:
        info_languages = None if name == AUTO_MODEL else services.transcriber.model_info(name).languages
        codes = tuple(sorted(LANGUAGES if info_languages is None else info_languages))
        groups.setdefault(codes, []).append(name)
        if name == engines.model:
            default_languages = codes
    groups.setdefault(default_languages, [])[:0] = MODEL_ALIASES
    ordered = sorted(groups.items(), key=lambda item: item[0] != default_languages)
    return [(models, ["", *codes]) for codes, models in ordered]


def translation_models(services: Services) -> list[str]:
    """The `model` values /v1/audio/translations takes: the allowed models that translate (and MODEL's aliases and
    `auto` when they do)."""
    engines = services.settings.engines
    names = [n for n in engines.allowed_models if services.transcriber.model_info(n).can_translate]
    router = services.transcriber.router
    if router is not None and router.translators:
        names.append(AUTO_MODEL)
    return [*names, *MODEL_ALIASES] if engines.model in names else names


def model_and_language(
    groups: list[tuple[list[str], list[str]]],
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """The `model` and `language` values Reflector's and OpenAI's forms take, and (when the models differ in their
    languages) which languages go with which model, as an `allOf` entry."""
    openai_models = [m for names, _ in groups for m in names]
    reflector_names = sorted(set(REFLECTOR_DEFAULT_MODELS) - set(openai_models))  # these mean MODEL too
    model = {"type": "string", "enum": [*openai_models, *reflector_names], "default": ""}
    language = {"type": "string", "enum": sorted({c for _, codes in groups for c in codes}), "default": ""}
    if len(groups) == 1:
        return model, language, []
    by_model = [
        {
            "properties": {"model": {"enum": names if i else [*names, *reflector_names]}, "language": {"enum": codes}},
            **({"required": ["model"]} if i else {}),  # MODEL's group (first): the model may be omitted
        }
        for i, (names, codes) in enumerate(groups)
    ]
    return model, language, [{"anyOf": by_model}]


def upload_form(found: dict[str, dict[str, Any]], services: Services) -> dict[str, Any]:
    """/v1/audio/transcriptions' one form: OpenAI's fields as one flat object (Swagger UI draws `properties` and
    sends every one of them), Reflector's as the other branch of an `anyOf` (ADR 16: `files[]` or `batch` make the
    form Reflector's), and which languages each model takes."""
    openai_form, reflector_form = found["TranscriptionForm"], found["ReflectorForm"]
    properties = dict(openai_form["properties"])
    groups = language_groups(services)
    openai_models = [m for models, _ in groups for m in models]
    model, language, by_model = model_and_language(groups)
    properties["model"], properties["language"] = model, language
    reflector_only = [name for name in reflector_form["properties"] if name not in openai_form["properties"]]
    dialects = [
        {
            "required": ["file"],
            "properties": {**dict.fromkeys(reflector_only, False), "model": {"enum": openai_models}},
        },
        {"required": ["files[]"], "properties": {**reflector_form["properties"], "file": False}},
    ]
    form: dict[str, Any] = {
        "title": "TranscriptionForm",
        "description": f"{openai_form['description']} Or Reflector's form: {reflector_form['description']}",
        "type": "object",
        "properties": properties,
        "anyOf": dialects,
    }
    if by_model:
        form["allOf"] = by_model
    return form


def schemas(services: Services) -> dict[str, dict[str, Any]]:
    _, generated = msgspec.json.schema_components(SCHEMA_TYPES, ref_template=REF)
    found: dict[str, dict[str, Any]] = {name: _for_forms(schema) for name, schema in generated.items()}  # type: ignore[misc]
    settings = services.settings
    limit = f"At most {settings.limits.max_upload_mb} MB (MAX_UPLOAD_MB) and {settings.audio.max_audio_seconds} s"
    for form in ("TranscriptionForm", "TranslationForm", "ReflectorForm"):
        properties = found[form]["properties"]
        for name in ("file", "files[]"):
            if name in properties:
                properties[name]["description"] = f"The audio, any format FFmpeg decodes. {limit}."
        if "response_format" in properties:
            properties["response_format"]["default"] = settings.http.default_response_format
    found["TranscriptionForm"] = upload_form(found, services)
    from_url = found["FromUrlBody"]
    from_url["properties"]["audio_file_url"] = AUDIO_URL.to_schema()
    from_url["required"] = ["audio_file_url"]
    model, language, by_model = model_and_language(language_groups(services))
    from_url["properties"]["model"] = {"anyOf": [model, {"type": "null"}]}
    from_url["properties"]["language"] = {"anyOf": [language, {"type": "null"}]}
    if by_model:
        from_url["allOf"] = by_model
    del found["ReflectorForm"]
    translation = found["TranslationForm"]
    models = translation_models(services)
    # answer_upload refuses diarized_json for translations
    formats = translation["properties"]["response_format"]
    formats["enum"] = [f for f in formats["enum"] if f != "diarized_json"]
    nothing: dict[str, Any] = {"not": {}, "description": "No model on this server translates"}
    translation["properties"]["model"] = {"type": "string", "enum": models} if models else nothing
    if services.settings.engines.model not in models:  # MODEL cannot translate: the model must be named
        translation["required"] = [*translation["required"], "model"]
    default_languages = language_groups(services)[0][1]
    found["AsrLanguage"] = {"type": "string", "enum": default_languages, "description": "A language MODEL knows"}
    found["AsrTask"] = {"type": "string", "enum": ["transcribe", *(["translate"] if _translates(services) else [])]}
    found["ModelList"] = {
        "type": "object",
        "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {"type": "object"}}},
        "required": ["object", "data"],
    }
    found["ServerSentEvent"] = {
        "description": "One event of a stream: its `data` is a StreamEvent as JSON, or `[DONE]` at the end",
        "type": "object",
        "properties": {
            "event": {"type": "string"},
            "data": {
                "anyOf": [
                    {"const": "[DONE]"},
                    {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"$ref": REF.format(name="StreamEvent")},
                    },
                ]
            },
        },
        "required": ["data"],
    }
    found["StreamEvent"] = {
        "anyOf": [{"$ref": REF.format(name=n)} for n in ("DeltaEvent", "DoneEvent", "SegmentEvent", "ErrorEvent")]
    }
    return found


def _translates(services: Services) -> bool:
    """Whether MODEL (what /asr uses) can translate."""
    engines = services.settings.engines
    router = services.transcriber.router
    if engines.model == AUTO_MODEL:
        return router is not None and bool(router.translators)
    return services.transcriber.model_info(engines.model).can_translate


def components(services: Services) -> Components:
    secured = bool(services.settings.http.api_key)
    return ContractComponents(
        contract=schemas(services),
        security_schemes={
            BEARER: SecurityScheme(type="http", scheme="bearer", description="API_KEY"),
            BASIC: SecurityScheme(type="http", scheme="basic", description="API_KEY as the password, any user name"),
        }
        if secured
        else None,
    )


def security(services: Services) -> list[SecurityRequirement] | None:
    return [{BEARER: []}, {BASIC: []}] if services.settings.http.api_key else None
