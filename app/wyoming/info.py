"""`describe` -> `info`: one ASR program, every allowed model (and `auto` with AUTO_ROUTES) as an `AsrModel`.

Home Assistant offers the languages of the installed models: a model counts as installed when it loads without
fetching anything (its files are in MODELS_DIR, or it is bundled). Languages are ISO 639-1 codes; a multilingual
Whisper lists every language of Whisper's table. Versions are those of the runtime that runs the model.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from wyoming.info import AsrModel, AsrProgram, Attribution, Info

from app import VERSION
from app.api.deps import Services
from app.engines.protocol import ModelInfo
from app.engines.registry import find_model, weights_present
from app.languages import LANGUAGES
from app.settings import AUTO_MODEL

PROGRAM = "stt-appliance"
RUNTIMES = {"whisper": "faster-whisper", "gigaam": "onnx-asr", "parakeet": "onnx-asr"}  # family -> package
OWNERS = {"openai": "OpenAI", "salute-developers": "SaluteDevices (GigaAM)", "nvidia": "NVIDIA"}


def languages_of(info: ModelInfo) -> list[str]:
    return sorted(info.languages if info.languages is not None else LANGUAGES)


def _runtime_version(family: str) -> str | None:
    try:
        return version(RUNTIMES[family]) if family in RUNTIMES else None
    except PackageNotFoundError:
        return None


def _model(services: Services, name: str) -> AsrModel:
    entry = find_model(name, services.settings.engines.models_dir)
    info = entry.info
    source = f"https://huggingface.co/{entry.weights.repo}" if entry.weights is not None else ""
    return AsrModel(
        name=name,
        attribution=Attribution(name=OWNERS.get(info.owned_by, info.owned_by), url=source),
        installed=weights_present(entry, services.settings.engines),
        description=f"{info.family} ({', '.join(languages_of(info)) if info.languages else 'multilingual'})",
        version=_runtime_version(info.family),
        languages=languages_of(info),
    )


def describe(services: Services) -> Info:
    models = [_model(services, name) for name in services.settings.engines.allowed_models]
    router = services.transcriber.router
    if router is not None:
        routed = {model.name: model for model in models}
        languages = sorted(LANGUAGES) if "*" in router.routes else sorted(router.routes)
        models.append(
            AsrModel(
                name=AUTO_MODEL,
                attribution=Attribution(name=PROGRAM, url=""),
                installed=all(routed[name].installed for name in router.routes.values()),
                description="routes each utterance by the language it names (AUTO_ROUTES)",
                version=VERSION,
                languages=languages,
            )
        )
    program = AsrProgram(
        name=PROGRAM,
        attribution=Attribution(name=PROGRAM, url=""),
        installed=True,
        description="Speech-to-text appliance: GigaAM, Whisper and Parakeet on one serialized worker",
        version=VERSION,
        models=models,
        supports_transcript_streaming=True,
        # Home Assistant's VAD ends the command (audio-stop): Silero here only cuts the audio into utterances for
        # the live lane and partial text; it never ends a command by itself.
        requires_external_vad=True,
    )
    return Info(asr=[program])
