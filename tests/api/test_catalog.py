"""The model catalog (`app/transcription/catalog.py`): what is offered, in which languages, what is resident; and
that `/v1/models`, `/health` and the OpenAPI contract all say what it says (in process, no model loaded: residency
is given placeholders, the catalog only reads its keys)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from app.api.deps import Services
from app.engines.registry import find_model
from app.model_names import GENERIC_NAMES, OPENAI_TRANSCRIPTION_MODELS
from app.server import create_app
from app.settings import SettingsError, load_settings
from app.transcription.catalog import EVERY_LANGUAGE, WHISPER_CODES, ModelCatalog
from app.transcription.routing import auto_router
from app.worker.residency import ModelKey, ModelKind, Residency

AUTO_ENV = {
    "MODEL": "auto",
    "ALLOWED_MODELS": "tiny.en,base,v3_ctc",
    "AUTO_ROUTES": "en=tiny.en,ru=v3_ctc,*=base",
}


def catalog_of(env: dict[str, str], models_dir: Path, residency: Residency | None = None) -> ModelCatalog:
    engines = load_settings({**env, "MODELS_DIR": str(models_dir)}, dotenv=None).engines

    def model_info(name: str) -> Any:
        return find_model(name, models_dir).info

    return ModelCatalog(engines, model_info, auto_router(engines, model_info), residency or Residency(1))


def hold(residency: Residency, kind: ModelKind, name: str) -> None:
    """Make `name` resident as `kind` (a placeholder: the catalog only looks at the keys)."""
    residency.get(ModelKey(kind, name), lambda: None, lambda _: object())


def test_offered_models_in_settings_order_then_auto(tmp_path: Path) -> None:
    catalog = catalog_of(AUTO_ENV, tmp_path)
    models = {m.name: m for m in catalog.models()}
    assert list(models) == ["tiny.en", "base", "v3_ctc", "auto"]
    assert models["tiny.en"].languages == ("en",) and models["tiny.en"].family == "whisper"
    assert models["base"].languages is None and models["base"].can_translate
    assert models["base"].language_codes() == WHISPER_CODES  # a multilingual Whisper knows Whisper's table
    assert models["auto"].language_codes() == EVERY_LANGUAGE  # the catch-all may route any code of ours
    assert models["v3_ctc"].languages == ("ru",) and models["v3_ctc"].owned_by == "salute-developers"
    assert models["auto"].languages is None  # `*` routes every other language
    assert catalog.default().name == "auto" and [m.name for m in catalog.models() if m.default] == ["auto"]
    assert catalog.translators() == ("base", "auto")
    assert set(catalog.aliases) == {*GENERIC_NAMES, *OPENAI_TRANSCRIPTION_MODELS}
    assert list(catalog.aliases) == sorted(catalog.aliases)
    assert not any(m.resident for m in catalog.models())


def test_auto_without_a_catch_all_takes_its_routed_languages(tmp_path: Path) -> None:
    catalog = catalog_of({**AUTO_ENV, "AUTO_ROUTES": "ru=v3_ctc,en=tiny.en", "AUTO_DETECT_MODEL": "base"}, tmp_path)
    auto = catalog.models()[-1]
    assert auto.name == "auto" and auto.languages == ("en", "ru") and not auto.can_translate
    assert catalog.translators() == ("base",)


def test_without_auto_routes_there_is_no_auto(tmp_path: Path) -> None:
    catalog = catalog_of({"MODEL": "v3_ctc", "ALLOWED_MODELS": "v3_ctc,tiny.en"}, tmp_path)
    assert [m.name for m in catalog.models()] == ["v3_ctc", "tiny.en"]
    assert catalog.auto() is None and catalog.translators() == ()


def test_a_model_the_registry_does_not_know_is_a_settings_error(tmp_path: Path) -> None:
    env = {"MODEL": "tiny.en", "ALLOWED_MODELS": "tiny.en,my-conversion", "MODELS_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match="ALLOWED_MODELS: Unknown model 'my-conversion'"):
        create_app(load_settings(env, dotenv=None))
    (tmp_path / "my-conversion").mkdir()
    (tmp_path / "my-conversion" / "model.bin").write_bytes(b"")  # an operator's CTranslate2 conversion
    catalog = catalog_of(env, tmp_path)
    assert catalog.models()[1].name == "my-conversion" and catalog.models()[1].languages is None


def test_residency_is_read_at_each_call(tmp_path: Path) -> None:
    residency = Residency(2)
    catalog = catalog_of(AUTO_ENV, tmp_path, residency)
    hold(residency, "speech", "v3_ctc")
    assert [m.name for m in catalog.models() if m.resident] == ["v3_ctc"]
    hold(residency, "language", "base")  # auto's detector, kept apart from the speech models
    assert [m.name for m in catalog.models() if m.resident] == ["base", "v3_ctc", "auto"]
    assert catalog.default().resident
    auto = catalog.auto()
    assert auto is not None and auto.detector == "base"
    assert auto.ready == {"tiny.en": False, "v3_ctc": True, "base": True}
    assert catalog.resident() == [ModelKey("speech", "v3_ctc"), ModelKey("language", "base")]


# --- every surface says what the catalog says ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def auto_app() -> Iterator[tuple[TestClient[Litestar], Services]]:
    with tempfile.TemporaryDirectory() as models:
        env = {**AUTO_ENV, "MODELS_DIR": models, "LOAD_MODEL_ON_STARTUP": "false", "MAX_LOADED_MODELS": "3"}
        app = create_app(load_settings(env, dotenv=None))
        with TestClient(app) as client:
            yield client, app.state.services


RESIDENT_CHOICES = [("speech", "tiny.en"), ("speech", "base"), ("speech", "v3_ctc"), ("language", "base")]


# each example unloads every model (a gc.collect: slow in a big test process), so a few examples cover the choices
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(resident=st.lists(st.sampled_from(RESIDENT_CHOICES), unique=True))
def test_models_and_health_agree_with_the_catalog(
    auto_app: tuple[TestClient[Litestar], Services], resident: list[tuple[ModelKind, str]]
) -> None:
    client, services = auto_app
    services.residency.unload_all()
    for kind, name in resident:
        hold(services.residency, kind, name)
    catalog = services.catalog
    everything = client.get("/v1/models").json()["data"]
    listed = [m for m in everything if "alias_of" not in m]  # then OpenAI's names, each MODEL's entry again
    assert [m["id"] for m in listed] == [m.name for m in catalog.models()]
    aliases = [m for m in everything if "alias_of" in m]
    default = next(m for m in listed if m["default"])
    assert [m["id"] for m in aliases] == list(OPENAI_TRANSCRIPTION_MODELS)
    assert all({**m, "id": default["id"]} == {**default, "alias_of": default["id"]} for m in aliases)
    for shown, model in zip(listed, catalog.models(), strict=True):
        assert shown["state"] == ("loaded" if model.resident else "unloaded")
        assert shown["languages"] == (None if model.languages is None else list(model.languages))
        assert (shown["translation"], shown["default"], shown["family"]) == (
            model.can_translate,
            model.default,
            model.family,
        )
    health = client.get("/health").json()
    auto = catalog.auto()
    assert auto is not None
    assert health["loaded"] is catalog.default().resident
    assert health["auto"] == {"routes": auto.routes, "detector": auto.detector, "ready": auto.ready}
    assert health["resident"] == [{"name": key.name, "kind": key.kind} for key in catalog.resident()]
    assert listed[-1]["routes"] == auto.routes and listed[-1]["detector"] == auto.detector


def test_the_contract_offers_the_catalogs_models_and_languages(auto_app: tuple[TestClient[Litestar], Services]) -> None:
    client, services = auto_app
    catalog = services.catalog
    schemas = client.get("/docs/openapi.json").json()["components"]["schemas"]
    form = schemas["TranscriptionForm"]
    offered = [m.name for m in catalog.models()]
    assert set(offered) | set(catalog.aliases) <= set(form["properties"]["model"]["enum"])
    by_model = form["allOf"][0]["anyOf"]
    for model in catalog.models():
        group = next(g for g in by_model if model.name in g["properties"]["model"]["enum"])
        assert group["properties"]["language"]["enum"] == ["", *model.language_codes()]
    assert schemas["TranslationForm"]["properties"]["model"]["enum"] == [*catalog.translators(), *catalog.aliases]
    assert schemas["ModelList"]["properties"]["data"]["items"] == {"$ref": "#/components/schemas/ModelObject"}
    assert schemas["Health"]["properties"]["auto"]["oneOf"][0] == {"$ref": "#/components/schemas/AutoRouting"}
