"""The JSON schemas that must be declared by hand, built for one app: the bodies our own readers parse (the
multipart forms that `app/api/forms.py` streams, Reflector's JSON bodies (`read_json`)), the answers rendered
per `response_format` (and their stream events) and the error body. Litestar infers the rest of the document from
the typed handlers (`/v1/models`, `/health`, `/diarize`, `/translate` and their query parameters).

msgspec generates these from the code's own types (the form Structs in `params.py`, the bodies in `app/render/`);
the model catalog gives each form its `model` and `language` values (and which languages go with which model), the
settings the upload limit and the default format.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from app.api.params import JobForm, TranscriptionForm, TranslationForm
from app.api.reflector_params import REFLECTOR_DEFAULT_MODELS, FromUrlBody, ReflectorForm, TranslateBody
from app.api.url_fetch import HTTP_URL_PATTERN
from app.render.formats import DiarizedBody, JsonBody, VerboseBody
from app.render.reflector import ReflectorResults, ReflectorTranscript
from app.render.sse import DeltaEvent, DoneEvent, ErrorBody, ErrorEvent, SegmentEvent
from app.render.whisper_asr import DetectedLanguage
from app.settings import Settings
from app.transcription.catalog import ModelCatalog

REF = "#/components/schemas/{name}"
AUDIO_URL = {"type": "string", "pattern": HTTP_URL_PATTERN, "description": "The audio's http(s) URL"}
# (model values, the language codes they take), one group per set of languages
LanguageGroups = list[tuple[list[str], list[str]]]


class ErrorResponse(msgspec.Struct):
    """Every error body: OpenAI's error object under `error`."""

    error: ErrorBody


class AsrForm(msgspec.Struct, kw_only=True):
    """POST /asr and /detect-language (whisper-asr-webservice's form): the audio in `audio_file`."""

    audio_file: Annotated[
        bytes,
        msgspec.Meta(description="A media file FFmpeg decodes (encode=true), or raw 16 kHz mono s16le (encode=false)"),
    ]


StreamEvent = DeltaEvent | DoneEvent | SegmentEvent | ErrorEvent
SCHEMA_TYPES: tuple[Any, ...] = (
    TranscriptionForm,
    TranslationForm,
    JobForm,
    ReflectorForm,
    FromUrlBody,
    TranslateBody,
    JsonBody,
    VerboseBody,
    DiarizedBody,
    ReflectorTranscript,
    ReflectorResults,
    StreamEvent,
    ErrorResponse,
    AsrForm,
    DetectedLanguage,
)


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


def language_groups(catalog: ModelCatalog) -> LanguageGroups:
    """The offered models grouped by the languages they take; "" (detect) is always one. The first group is MODEL's,
    with the names that mean MODEL (an omitted model, OpenAI's aliases)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for model in catalog.models():
        groups.setdefault(model.language_codes(), []).append(model.name)
    default = catalog.default().language_codes()
    groups[default][:0] = catalog.aliases
    ordered = sorted(groups.items(), key=lambda item: item[0] != default)
    return [(models, ["", *codes]) for codes, models in ordered]


def translation_models(catalog: ModelCatalog) -> list[str]:
    """The `model` values /v1/audio/translations takes: the offered models that translate (and MODEL's aliases when
    MODEL does)."""
    names = list(catalog.translators())
    return [*names, *catalog.aliases] if catalog.default().can_translate else names


def model_and_language(groups: LanguageGroups) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
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


def upload_form(found: dict[str, dict[str, Any]], groups: LanguageGroups) -> dict[str, Any]:
    """/v1/audio/transcriptions' one form: OpenAI's fields as one flat object (Swagger UI draws `properties` and
    sends every one of them), Reflector's as the other branch of an `anyOf` (ADR 16: `files[]` or `batch` make the
    form Reflector's), and which languages each model takes."""
    openai_form, reflector_form = found["TranscriptionForm"], found["ReflectorForm"]
    properties = dict(openai_form["properties"])
    openai_models = [m for models, _ in groups for m in models]
    model, language, by_model = model_and_language(groups)
    properties["model"], properties["language"] = model, language
    # languages[] takes the codes `language` takes, model by model (and not beside a `language` that differs)
    properties["languages[]"] = {**properties["languages[]"], "items": language}
    for entry in by_model:
        for choice in entry["anyOf"]:
            choice["properties"]["languages[]"] = {"items": {"enum": choice["properties"]["language"]["enum"]}}
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


def job_form(found: dict[str, dict[str, Any]], catalog: ModelCatalog) -> dict[str, Any]:
    """POST /v1/jobs: OpenAI's fields as /v1/audio/transcriptions declares them (never `stream`) and `task`; a
    translation takes a model that translates (named, when MODEL does not) and no diarized_json."""
    upload, form = found["TranscriptionForm"], found["JobForm"]
    properties = {name: value for name, value in upload["properties"].items() if name != "stream"}
    openai_models = upload["anyOf"][0]["properties"]["model"]["enum"]  # not Reflector's names: its form is not taken
    properties["model"] = {**properties["model"], "enum": openai_models}
    translators = translation_models(catalog)
    translation: dict[str, Any] = {
        "properties": {
            "task": {"const": "translate"},
            "model": {"enum": translators} if translators else {"not": {}},
            "response_format": {"not": {"const": "diarized_json"}},
        },
        "required": ["task"] if catalog.default().can_translate else ["task", "model"],
    }
    transcription = {"properties": {"task": {"const": "transcribe"}}}
    tasks = {"anyOf": [transcription, translation]}
    return {
        "title": "JobForm",
        "description": form["description"],
        "type": "object",
        "properties": {**properties, "task": form["properties"]["task"]},
        "required": ["file"],
        "allOf": [*upload.get("allOf", []), tasks],
    }


def translation_form(form: dict[str, Any], catalog: ModelCatalog) -> None:
    """/v1/audio/translations' form: only the models that translate, and no diarized_json (answer_upload refuses
    it for translations); the model must be named when MODEL cannot translate."""
    models = translation_models(catalog)
    formats = form["properties"]["response_format"]
    formats["enum"] = [f for f in formats["enum"] if f != "diarized_json"]
    nothing: dict[str, Any] = {"not": {}, "description": "No model on this server translates"}
    form["properties"]["model"] = {"type": "string", "enum": models} if models else nothing
    if not catalog.default().can_translate:
        form["required"] = [*form["required"], "model"]


def stream_schemas() -> dict[str, dict[str, Any]]:
    """A stream's events: SSE is one `data` line per event, each a StreamEvent as JSON, then `[DONE]`."""
    return {
        "ServerSentEvent": {
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
        },
        "StreamEvent": {
            "anyOf": [{"$ref": REF.format(name=n)} for n in ("DeltaEvent", "DoneEvent", "SegmentEvent", "ErrorEvent")]
        },
    }


def declared_schemas(catalog: ModelCatalog, settings: Settings) -> dict[str, dict[str, Any]]:
    """Every hand-declared schema of one app, by component name."""
    _, generated = msgspec.json.schema_components(SCHEMA_TYPES, ref_template=REF)
    found: dict[str, dict[str, Any]] = {name: _for_forms(schema) for name, schema in generated.items()}  # type: ignore[misc]
    limit = f"At most {settings.limits.max_upload_mb} MB (MAX_UPLOAD_MB) and {settings.audio.max_audio_seconds} s"
    for form in ("TranscriptionForm", "TranslationForm", "ReflectorForm"):
        properties = found[form]["properties"]
        for name in ("file", "files[]"):
            if name in properties:
                properties[name]["description"] = f"The audio, any format FFmpeg decodes. {limit}."
        if "response_format" in properties:
            properties["response_format"]["default"] = settings.http.default_response_format
    groups = language_groups(catalog)
    found["TranscriptionForm"] = upload_form(found, groups)
    found["JobForm"] = job_form(found, catalog)
    del found["ReflectorForm"]
    from_url = found["FromUrlBody"]
    from_url["properties"]["audio_file_url"] = AUDIO_URL
    from_url["required"] = ["audio_file_url"]
    model, language, by_model = model_and_language(groups)
    from_url["properties"]["model"] = {"anyOf": [model, {"type": "null"}]}
    from_url["properties"]["language"] = {"anyOf": [language, {"type": "null"}]}
    if by_model:
        from_url["allOf"] = by_model
    translation_form(found["TranslationForm"], catalog)
    # /asr runs MODEL: its languages, and translation when MODEL translates
    found["AsrLanguage"] = {"type": "string", "enum": groups[0][1], "description": "A language MODEL knows"}
    tasks = ["transcribe", *(["translate"] if catalog.default().can_translate else [])]
    found["AsrTask"] = {"type": "string", "enum": tasks}
    return {**found, **stream_schemas()}
