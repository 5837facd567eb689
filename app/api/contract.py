"""The OpenAPI contract: what each route declares by hand, over what Litestar infers from the typed handlers.

Litestar infers `/v1/models`, `/health`, `/diarize` and `/translate` (their query parameters and answers are typed
Structs). It cannot infer what our own readers and renderers handle: the upload bodies (the streaming multipart
reader and `read_json` read them, so a handler has no `data`), the answers per `response_format`, and every error
status with its headers. Two halves, because route handlers are module-level and settings are per app:
- `declared(...)` gives a route its `operation_class`: the declared body and responses (references into the
  components) over what Litestar inferred, status by status; `public` routes declare no security.
- `components(services)` builds one app's components: the hand-declared schemas (`app/api/schemas.py`: the forms
  with the catalog's models and languages, the upload limit, the default format) beside those Litestar inferred,
  and the security scheme when API_KEY is set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

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
from app.api.schemas import REF, declared_schemas
from app.errors import (
    InputTooLarge,
    InvalidInput,
    JobUnfinished,
    ModelUnavailable,
    QueueFull,
    ShuttingDown,
    SourceFailed,
    SourceNotFound,
    SourceTimeout,
    StorageFull,
    UnknownJob,
    UploadStalled,
)

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
Headers = dict[str, OpenAPIHeader | Reference]


@dataclass
class ContractComponents(Components):
    """Litestar sets `schemas` to those it inferred when it builds the document; the declared ones are joined to them
    when the document is written (a name in both is a bug: two generators for one type)."""

    declared: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_schema(self) -> dict[str, Any]:
        out = Components(**{f.name: getattr(self, f.name) for f in fields(Components)}).to_schema()
        inferred = out.get("schemas", {})
        if twice := sorted(inferred.keys() & self.declared.keys()):
            raise RuntimeError(f"schemas both inferred and declared: {twice}")
        out["schemas"] = {**inferred, **self.declared}
        return out


def ref(name: str) -> Reference:
    return Reference(ref=REF.format(name=name))


# --- errors: statuses from the one table ---------------------------------------------------------------------------


def status_of(error: type[Exception]) -> int:
    if error is ClientGone:
        return CLIENT_CLOSED_REQUEST
    return next(status for cls, status, _ in HTTP_ERRORS if issubclass(error, cls))


ERROR_WHEN: Mapping[type[Exception], str] = {
    InvalidInput: "A parameter is missing or invalid, or the audio cannot be decoded (`param` names it)",
    Unauthorized: "API_KEY is set and the request has no or a wrong `Authorization: Bearer` key",
    SourceNotFound: "The audio URL answered 404",
    UploadStalled: (
        "The request body came slower than UPLOAD_MIN_BYTES_PER_SECOND (or not at all) for UPLOAD_IDLE_TIMEOUT_SECONDS"
    ),
    InputTooLarge: "The upload (or download) is larger than MAX_UPLOAD_MB, or the JSON body too large",
    ClientGone: "The client closed the connection before the answer (logged; nobody reads this)",
    SourceFailed: "The audio URL could not be fetched",
    QueueFull: (
        "The queue (MAX_QUEUE), the upload slots (MAX_UPLOADS) or, for jobs, the jobs held (MAX_JOBS) are full: retry "
        "after Retry-After seconds"
    ),
    ModelUnavailable: "The model cannot be loaded or fetched on this server",
    SourceTimeout: "The audio URL did not answer within URL_TIMEOUT_SECONDS (or sent too slowly)",
    ShuttingDown: "The server is shutting down: retry after Retry-After seconds (on it once restarted, or another)",
    StorageFull: "The server's storage is full (its TMPDIR): retry after Retry-After seconds",
    UnknownJob: "No job has this id: it expired (JOBS_TTL_SECONDS), was deleted, or the server restarted",
    JobUnfinished: "The job has no result: it is still queued or running, it failed, or it was cancelled",
}
RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0), description="Seconds to wait before retrying"
)
ERROR_HEADERS: Mapping[type[Exception], Headers] = {
    Unauthorized: {
        "WWW-Authenticate": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING), required=True, description="`Bearer realm=...`"
        )
    },
    QueueFull: {"Retry-After": RETRY_AFTER},
    ShuttingDown: {"Retry-After": RETRY_AFTER},
    StorageFull: {"Retry-After": RETRY_AFTER},
}
UPLOAD_ERRORS: tuple[type[Exception], ...] = (
    InvalidInput,
    Unauthorized,
    UploadStalled,
    InputTooLarge,
    ClientGone,
    QueueFull,
    ModelUnavailable,
    ShuttingDown,
    StorageFull,
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
            "application/json": OpenAPIMediaType(schema=Schema(any_of=[ref(shape) for shape in shapes])),
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


# --- the routes' operations ----------------------------------------------------------------------------------------


def query(name: str, schema: Schema | Reference, description: str) -> Parameter:
    """A query parameter a route reads itself (Litestar cannot infer it)."""
    return Parameter(name=name, param_in="query", schema=schema, description=description, required=False)


def declared(
    responses: Mapping[str, OpenAPIResponse],
    *,
    body: RequestBody | None = None,
    public: bool = False,
    parameters: Sequence[Parameter] = (),
) -> type[Operation]:
    """An `operation_class` for a route: `responses` over the inferred ones (status by status: the declared error
    body replaces Litestar's own 400), `body` instead of the inferred (none: the route reads its body itself), and
    with `public` no security even when API_KEY is set."""

    @dataclass
    class Declared(Operation):
        def __post_init__(self) -> None:
            if body is not None:
                self.request_body = body
            self.responses = {**(self.responses or {}), **responses}
            if public:
                self.security = []
            if parameters:
                self.parameters = [*(self.parameters or []), *parameters]

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
DIARIZE = declared(error_responses(URL_ERRORS))
TRANSLATE = declared(
    error_responses(UPLOAD_ERRORS),
    body=RequestBody(content={"application/json": OpenAPIMediaType(schema=ref("TranslateBody"))}),
)
MODELS = declared(error_responses([Unauthorized]))
PUBLIC = declared({}, public=True)


# --- the components of one app -------------------------------------------------------------------------------------


def components(services: Services) -> Components:
    secured = bool(services.settings.http.api_key)
    return ContractComponents(
        declared=declared_schemas(services.catalog, services.settings),
        security_schemes={
            BEARER: SecurityScheme(type="http", scheme="bearer", description="API_KEY"),
            BASIC: SecurityScheme(type="http", scheme="basic", description="API_KEY as the password, any user name"),
        }
        if secured
        else None,
    )


def security(services: Services) -> list[SecurityRequirement] | None:
    return [{BEARER: []}, {BASIC: []}] if services.settings.http.api_key else None
