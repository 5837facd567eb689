"""MODEL=auto: which model serves a language, and which Whisper detects the language when the request names none.

    router = auto_router(settings.engines, model_info)   # None without AUTO_ROUTES; SettingsError when unusable
    router.model_for("de")                                 # "base" (the `*` route) or None

Built once at start-up from AUTO_ROUTES (already checked for syntax and ALLOWED_MODELS by the settings) and the
registry's model infos: each route's model must know its language, `*` must be multilingual, and a multilingual
Whisper must be allowed to detect languages. Every refusal names the variable.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from app.engines.protocol import ModelInfo
from app.errors import AppError
from app.settings import EngineSettings, SettingsError

OTHER_LANGUAGES = "*"
# Whisper checkpoints by size (millions of parameters): the smallest allowed multilingual one detects languages.
# Distilled checkpoints are left out (their language detection was not trained); unknown conversions come last.
WHISPER_SIZES: dict[str, int] = {
    "tiny": 39,
    "base": 74,
    "small": 244,
    "medium": 769,
    "large-v3-turbo": 809,
    "turbo": 809,
    "large-v1": 1550,
    "large-v2": 1550,
    "large-v3": 1550,
}
UNKNOWN_SIZE = 1_000_000


class AutoRouter(msgspec.Struct, frozen=True, kw_only=True):
    routes: dict[str, str]  # language code or `*` -> model name
    detector: str  # the multilingual Whisper that detects a request's language
    translators: frozenset[str]  # route models that can translate

    @property
    def models(self) -> tuple[str, ...]:
        """Every model auto may use (routes first, then the detector), each once."""
        return tuple(dict.fromkeys([*self.routes.values(), self.detector]))

    def model_for(self, language: str) -> str | None:
        """The model for `language`: its own route, else `*`'s; None when neither exists."""
        return self.routes.get(language) or self.routes.get(OTHER_LANGUAGES)

    def translator_for(self, language: str | None) -> str | None:
        """The model that translates speech in `language` into English: its route if that model can translate,
        else `*`'s if it can; None when neither can."""
        candidates = [self.routes.get(language or ""), self.routes.get(OTHER_LANGUAGES)]
        return next((name for name in candidates if name in self.translators), None)


def auto_router(engines: EngineSettings, model_info: Callable[[str], ModelInfo]) -> AutoRouter | None:
    """The routing table of AUTO_ROUTES, checked against what each model can do; None when AUTO_ROUTES is empty."""
    routes = engines.routes()
    if not routes:
        return None

    def info_of(name: str) -> ModelInfo:
        try:
            return model_info(name)
        except AppError as exc:
            raise SettingsError(f"AUTO_ROUTES/AUTO_DETECT_MODEL: {exc.message}") from None

    for language, name in routes.items():
        info = info_of(name)
        if language == OTHER_LANGUAGES and info.languages is not None:
            raise SettingsError(
                f"AUTO_ROUTES: '*' (every other language) needs a multilingual model; {name!r} only knows "
                f"{info.language_names()}"
            )
        if language != OTHER_LANGUAGES and not info.supports(language):
            raise SettingsError(
                f"AUTO_ROUTES: {name!r} cannot transcribe {language!r}: it knows {info.language_names()}"
            )
    return AutoRouter(
        routes=routes,
        detector=_detector(engines, info_of),
        translators=frozenset(name for name in routes.values() if info_of(name).can_translate),
    )


def _multilingual_whisper(info: ModelInfo) -> bool:
    return info.family == "whisper" and info.languages is None


def smallest_detector(engines: EngineSettings, info_of: Callable[[str], ModelInfo]) -> str | None:
    """The smallest allowed multilingual Whisper (distilled ones cannot detect), or None."""
    candidates = [
        n for n in engines.allowed_models if _multilingual_whisper(info_of(n)) and not n.startswith("distil-")
    ]
    return min(candidates, key=lambda name: WHISPER_SIZES.get(name, UNKNOWN_SIZE)) if candidates else None


def _detector(engines: EngineSettings, info_of: Callable[[str], ModelInfo]) -> str:
    if engines.auto_detect_model:
        if not _multilingual_whisper(info_of(engines.auto_detect_model)):
            raise SettingsError(f"AUTO_DETECT_MODEL={engines.auto_detect_model!r} must be a multilingual Whisper model")
        return engines.auto_detect_model
    name = smallest_detector(engines, info_of)
    if name is None:
        raise SettingsError(
            "AUTO_ROUTES needs a multilingual Whisper model (such as tiny or base) in ALLOWED_MODELS to detect "
            "languages; or set AUTO_DETECT_MODEL"
        )
    return name
