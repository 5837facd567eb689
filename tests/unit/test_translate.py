"""Translation through the real CTranslate2 path, on a tiny random-weight Marian model the tests build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.errors import InvalidInput, ModelUnavailable
from app.translation.models import (
    Downloader,
    TranslationCatalog,
    hub_download,
    load_translation_model,
    split_sentences,
    translate_text,
)


def translate(
    models_dir: Path,
    text: str,
    source: str,
    target: str,
    hub_repo: str | None = None,
    downloader: Downloader = hub_download,
) -> str:
    """The translation path the service runs on the worker, with the model loaded afresh."""
    catalog = TranslationCatalog(models_dir, hub_repo=hub_repo, downloader=downloader)
    result, _ = translate_text(
        text, source, target, catalog, lambda model: load_translation_model(models_dir, model, num_threads=1)
    )
    return result


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tools.marian_build import build

    root = tmp_path_factory.mktemp("models")
    build(root / "opus-mt-en-ru")
    return root


def test_translates_through_ctranslate2(models_dir: Path) -> None:
    text = "Hello world. The meeting starts at nine!\nThank you."
    first = translate(models_dir, text, "en", "ru")
    second = translate(models_dir, text, "en", "ru")
    assert isinstance(first, str) and first.strip()
    assert first == second  # deterministic
    assert first.count("\n") == 1  # lines kept
    assert translate(models_dir, "   ", "en", "ru") == ""


def test_unsupported_pair_names_the_model(models_dir: Path) -> None:
    with pytest.raises(ModelUnavailable, match=r"opus-mt-en-de.*ct2-transformers-converter"):
        translate(models_dir, "Hello.", "en", "de")


@pytest.mark.parametrize(("src", "tgt"), [("english", "ru"), ("en", "RU"), ("en", "en"), ("", "ru")])
def test_bad_codes(models_dir: Path, src: str, tgt: str) -> None:
    with pytest.raises(InvalidInput):
        translate(models_dir, "Hello.", src, tgt)


def test_download_on_first_use(models_dir: Path, tmp_path: Path) -> None:
    """A missing pair is fetched by the downloader (here a local copy standing in for the hub) and then used."""
    calls: list[tuple[str, Path]] = []

    def fake_hub(repo: str, dest: Path) -> None:
        calls.append((repo, dest))
        shutil.copytree(models_dir / "opus-mt-en-ru", dest)

    hub = "org/opus-mt-{src}-{tgt}-ct2"
    assert translate(tmp_path, "Hello world.", "en", "ru", hub_repo=hub, downloader=fake_hub)
    assert calls == [("org/opus-mt-en-ru-ct2", tmp_path / "opus-mt-en-ru")]
    translate(tmp_path, "Hello again.", "en", "ru", hub_repo=hub, downloader=fake_hub)
    assert len(calls) == 1


def test_download_failure_is_clear(tmp_path: Path) -> None:
    def offline(repo: str, dest: Path) -> None:
        raise OSError("network unreachable")

    with pytest.raises(ModelUnavailable, match=r"opus-mt-en-ru.*could not be downloaded from org/opus-mt-en-ru-ct2"):
        translate(tmp_path, "Hello.", "en", "ru", hub_repo="org/opus-mt-{src}-{tgt}-ct2", downloader=offline)


def test_broken_model_dir(tmp_path: Path) -> None:
    (tmp_path / "opus-mt-en-ru").mkdir()
    (tmp_path / "opus-mt-en-ru" / "model.bin").write_bytes(b"not a model")
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        translate(tmp_path, "Hello.", "en", "ru")


def test_split_sentences() -> None:
    assert split_sentences("A b. C d! E?\n\nF.") == [["A b.", "C d!", "E?"], [], ["F."]]
