"""Which model names exist, what each can do (without loading it), and how to load each one."""

from __future__ import annotations

from app.engines.base import Engine, ModelInfo
from app.errors import InvalidRequest
from app.settings import Settings
from app.weights import model_dir

GIGAAM_MODELS = ("v3_ctc", "v3_e2e_ctc", "v3_rnnt", "v3_e2e_rnnt", "v2_ctc", "v2_rnnt")
PARAKEET_MODELS = ("nvidia/parakeet-tdt-0.6b-v2",)
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
# Whisper checkpoints that were not trained to translate (English-only, distilled, turbo).
_NO_TRANSLATION = ("distil-", "turbo")


def family_of(name: str, settings: Settings) -> str:
    if name in GIGAAM_MODELS:
        return "gigaam"
    if name in PARAKEET_MODELS:
        return "parakeet"
    if name in WHISPER_MODELS or (model_dir(name, settings.models_dir) / "model.bin").is_file():
        return "whisper"
    raise InvalidRequest(f"Unknown model '{name}'", param="model", code="model_not_found")


def model_info(name: str, settings: Settings) -> ModelInfo:
    """What `name` is and can do, without loading it."""
    family = family_of(name, settings)
    if family == "gigaam":
        return ModelInfo(name=name, family=family, languages=frozenset({"ru"}), owned_by="salute-developers")
    if family == "parakeet":
        return ModelInfo(name=name, family=family, languages=frozenset({"en"}), owned_by="nvidia")
    english_only = name.endswith(".en")
    return ModelInfo(
        name=name,
        family=family,
        languages=frozenset({"en"}) if english_only else None,
        can_translate=not english_only and not any(marker in name for marker in _NO_TRANSLATION),
        owned_by="openai",
    )


def load_engine(name: str, settings: Settings) -> Engine:
    """Load a model into memory (fetching its weights first if they are missing and a network is there)."""
    family = family_of(name, settings)
    quantization = None if settings.quantization == "none" else settings.quantization
    if family == "gigaam":
        from app.engines.gigaam import load_gigaam

        return load_gigaam(
            name,
            models_dir=settings.models_dir,
            quantization=quantization,
            num_threads=settings.num_threads,
            device=settings.device,
        )
    if family == "parakeet":
        from app.engines.parakeet import load_parakeet

        return load_parakeet(
            name,
            models_dir=settings.models_dir,
            quantization=quantization,
            num_threads=settings.num_threads,
            device=settings.device,
        )
    from app.engines.whisper import load_whisper

    return load_whisper(name, models_dir=settings.models_dir, device=settings.device, num_threads=settings.num_threads)
