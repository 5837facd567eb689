"""Which model names exist, what each can do (without loading it), and how to load each one."""

from __future__ import annotations

from app.engines.gigaam import GIGAAM_MODELS, gigaam_info, load_gigaam
from app.engines.parakeet import PARAKEET_MODELS, load_parakeet, parakeet_info
from app.engines.protocol import Engine, ModelInfo
from app.engines.whisper import load_whisper, resolve_whisper_model, whisper_info
from app.errors import InvalidInput
from app.settings import Settings
from app.weights.store import ensure_model_files, model_dir

# faster-whisper's names for the CTranslate2 conversions it knows how to fetch (Systran/faster-whisper-<name> etc.)
WHISPER_MODELS = (
    "tiny.en",
    "tiny",
    "base.en",
    "base",
    "small.en",
    "small",
    "medium.en",
    "medium",
    "large-v1",
    "large-v2",
    "large-v3",
    "large-v3-turbo",
    "turbo",
    "distil-small.en",
    "distil-medium.en",
    "distil-large-v2",
    "distil-large-v3",
)


def family_of(name: str, settings: Settings) -> str:
    if name in GIGAAM_MODELS:
        return "gigaam"
    if name in PARAKEET_MODELS:
        return "parakeet"
    if name in WHISPER_MODELS or (model_dir(name, settings.models_dir) / "model.bin").is_file():
        return "whisper"
    raise InvalidInput(f"Unknown model '{name}'", about="model", code="model_not_found")


def model_info(name: str, settings: Settings) -> ModelInfo:
    """What `name` is and can do, without loading it."""
    family = family_of(name, settings)
    if family == "gigaam":
        return gigaam_info(name)
    if family == "parakeet":
        return parakeet_info(name)
    return whisper_info(name)


ONNX_ASR_LOADERS = {"gigaam": load_gigaam, "parakeet": load_parakeet}


def prepare_model(name: str, settings: Settings) -> None:
    """Make sure `name`'s weights are on disk (fetching them if needed) without loading anything.

    Raises ModelUnavailable when they cannot be had, so the caller learns it before evicting a resident model.
    """
    family = family_of(name, settings)
    if family == "whisper":
        resolve_whisper_model(name, settings.models_dir)
        return
    ensure_model_files(name, settings.models_dir, quantization=settings.onnx_quantization)


def load_engine(name: str, settings: Settings) -> Engine:
    """Load a model into memory (fetching its weights first if they are missing and a network is there)."""
    family = family_of(name, settings)
    if family in ONNX_ASR_LOADERS:
        return ONNX_ASR_LOADERS[family](
            name,
            models_dir=settings.models_dir,
            quantization=settings.onnx_quantization,
            num_threads=settings.num_threads,
            device=settings.device,
        )
    return load_whisper(name, models_dir=settings.models_dir, device=settings.device, num_threads=settings.num_threads)
