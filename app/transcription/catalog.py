"""The one model catalog: which speech models a request may name, what each can do, which one is MODEL, and what is
resident now. `/v1/models`, `/health`, the OpenAPI contract (the `model` and `language` values of each form), the
page (through `/v1/models`) and Wyoming's `info` all read it; nothing else decides what is offered.

    catalog = ModelCatalog(settings.engines, transcriber.model_info, transcriber.router, residency)
    [m.name for m in catalog.models()]    # ALLOWED_MODELS in order, then "auto" (with AUTO_ROUTES)
    catalog.default().resident            # MODEL is loaded (MODEL=auto: its language detector is)

What a model is comes from the registry once, at start-up (an ALLOWED_MODELS name the registry does not know is a
SettingsError then); residency is read at each call (a snapshot of the keys, as the worker leaves them).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from app.engines.protocol import ModelInfo
from app.errors import AppError
from app.languages import LANGUAGES, WHISPER_LANGUAGES
from app.model_names import GENERIC_NAMES, OPENAI_TRANSCRIPTION_MODELS
from app.settings import AUTO_MODEL, EngineSettings, SettingsError
from app.transcription.routing import OTHER_LANGUAGES, AutoRouter
from app.worker.residency import ModelKey, Residency

AUTO_FAMILY = AUTO_MODEL
AUTO_OWNER = "stt-appliance"
EVERY_LANGUAGE = tuple(sorted(LANGUAGES))  # what MODEL=auto may route (Kyrgyz: GigaAM Multilingual only)
WHISPER_CODES = tuple(sorted(WHISPER_LANGUAGES))  # what a multilingual model (a Whisper) knows


class OfferedModel(msgspec.Struct, frozen=True, kw_only=True):
    """One model a request may name, as every surface shows it."""

    name: str
    family: str  # "whisper", "gigaam", "parakeet"; "auto" for MODEL=auto
    languages: tuple[str, ...] | None  # ISO 639 codes, sorted; None: any language (a multilingual model)
    can_translate: bool  # speech in another language -> English text
    owned_by: str
    default: bool  # MODEL: what an omitted model (or an OpenAI alias) means
    resident: bool  # loaded now (auto: its language detector is)

    def language_codes(self) -> tuple[str, ...]:
        """The codes it takes: its own, or (None) Whisper's table (MODEL=auto's catch-all: every code of ours)."""
        if self.languages is not None:
            return self.languages
        return EVERY_LANGUAGE if self.family == AUTO_FAMILY else WHISPER_CODES


class AutoRouting(msgspec.Struct, frozen=True):
    """MODEL=auto's table: which model serves which language, the detector, and whether each model is resident."""

    routes: dict[str, str]  # language code or `*` -> model name
    detector: str  # the multilingual Whisper that detects a request's language
    ready: dict[str, bool]  # every model auto may use (routes first, then the detector) -> resident now


class ModelCatalog:
    def __init__(
        self,
        engines: EngineSettings,
        model_info: Callable[[str], ModelInfo],
        router: AutoRouter | None,
        residency: Residency,
    ) -> None:
        self.router = router
        self._residency = residency
        # everything but residency, fixed at start-up
        offers = [_offer(model_info, name, default=name == engines.model) for name in engines.allowed_models]
        if router is not None:
            offers.append(
                OfferedModel(
                    name=AUTO_MODEL,
                    family=AUTO_FAMILY,
                    languages=None if OTHER_LANGUAGES in router.routes else tuple(sorted(router.routes)),
                    can_translate=bool(router.translators),
                    owned_by=AUTO_OWNER,
                    default=engines.model == AUTO_MODEL,
                    resident=False,
                )
            )
        self._offers = tuple(offers)

    @property
    def aliases(self) -> tuple[str, ...]:
        """The names that mean MODEL: an omitted or empty model, `default` and OpenAI's names (`whisper-1`, ...),
        sorted (their dated snapshots mean it too: `app/model_names.py`). /v1/models lists OpenAI's names as
        aliases of MODEL's entry."""
        return tuple(sorted({*GENERIC_NAMES, *OPENAI_TRANSCRIPTION_MODELS}))

    def models(self) -> tuple[OfferedModel, ...]:
        """Every model a request may name: ALLOWED_MODELS in their order, then `auto` when AUTO_ROUTES is set."""
        return tuple(msgspec.structs.replace(m, resident=self.is_resident(m.name)) for m in self._offers)

    def default(self) -> OfferedModel:
        """MODEL's entry."""
        return next(model for model in self.models() if model.default)

    def translators(self) -> tuple[str, ...]:
        """The models /v1/audio/translations takes, in catalog order."""
        return tuple(offer.name for offer in self._offers if offer.can_translate)

    def auto(self) -> AutoRouting | None:
        """MODEL=auto's routing and readiness; None without AUTO_ROUTES."""
        if self.router is None:
            return None
        ready = {name: self.is_resident(name) for name in self.router.models}
        return AutoRouting(routes=self.router.routes, detector=self.router.detector, ready=ready)

    def resident(self) -> list[ModelKey]:
        """Every resident model of every kind (speech, language detector, speaker encoder, translation), least
        recently used first."""
        return self._residency.keys

    def is_resident(self, name: str) -> bool:
        """Whether `name` is in memory (as a speech model, or as MODEL=auto's language detector); `auto` when its
        detector is."""
        if name == AUTO_MODEL:
            return self.router is not None and self.is_resident(self.router.detector)
        holds = self._residency.holds
        return holds(ModelKey("speech", name)) or holds(ModelKey("language", name))


def _offer(model_info: Callable[[str], ModelInfo], name: str, *, default: bool) -> OfferedModel:
    try:
        info = model_info(name)
    except AppError as exc:
        raise SettingsError(f"ALLOWED_MODELS: {exc.message}") from None
    return OfferedModel(
        name=name,
        family=info.family,
        languages=None if info.languages is None else tuple(sorted(info.languages)),
        can_translate=info.can_translate,
        owned_by=info.owned_by,
        default=default,
        resident=False,
    )
