"""Translation through the real CTranslate2 path, on a tiny random-weight Marian model the tests build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.errors import InvalidInput, ModelUnavailable
from app.translation.translator import Translator, split_sentences


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from tools.marian_build import build

    root = tmp_path_factory.mktemp("models")
    build(root / "opus-mt-en-ru")
    return root


def test_translates_through_ctranslate2(models_dir: Path) -> None:
    translator = Translator(models_dir, num_threads=1)
    text = "Hello world. The meeting starts at nine!\nThank you."
    first = translator.translate(text, "en", "ru")
    second = Translator(models_dir, num_threads=1).translate(text, "en", "ru")
    assert isinstance(first, str) and first.strip()
    assert first == second  # deterministic
    assert first.count("\n") == 1  # lines kept
    assert translator.translate("   ", "en", "ru") == ""


def test_unsupported_pair_names_the_model(models_dir: Path) -> None:
    with pytest.raises(ModelUnavailable, match=r"opus-mt-en-de.*ct2-transformers-converter"):
        Translator(models_dir).translate("Hello.", "en", "de")


@pytest.mark.parametrize(("src", "tgt"), [("english", "ru"), ("en", "RU"), ("en", "en"), ("", "ru")])
def test_bad_codes(models_dir: Path, src: str, tgt: str) -> None:
    with pytest.raises(InvalidInput):
        Translator(models_dir).translate("Hello.", src, tgt)


def test_download_on_first_use(models_dir: Path, tmp_path: Path) -> None:
    """A missing pair is fetched by the downloader (here a local copy standing in for the hub) and then used."""
    calls: list[tuple[str, Path]] = []

    def fake_hub(repo: str, dest: Path) -> None:
        calls.append((repo, dest))
        shutil.copytree(models_dir / "opus-mt-en-ru", dest)

    translator = Translator(tmp_path, hub_repo="org/opus-mt-{src}-{tgt}-ct2", downloader=fake_hub)
    assert translator.translate("Hello world.", "en", "ru")
    assert calls == [("org/opus-mt-en-ru-ct2", tmp_path / "opus-mt-en-ru")]
    translator.translate("Hello again.", "en", "ru")
    assert len(calls) == 1


def test_download_failure_is_clear(tmp_path: Path) -> None:
    def offline(repo: str, dest: Path) -> None:
        raise OSError("network unreachable")

    translator = Translator(tmp_path, hub_repo="org/opus-mt-{src}-{tgt}-ct2", downloader=offline)
    with pytest.raises(ModelUnavailable, match=r"opus-mt-en-ru.*could not be downloaded from org/opus-mt-en-ru-ct2"):
        translator.translate("Hello.", "en", "ru")


def test_broken_model_dir(tmp_path: Path) -> None:
    (tmp_path / "opus-mt-en-ru").mkdir()
    (tmp_path / "opus-mt-en-ru" / "model.bin").write_bytes(b"not a model")
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        Translator(tmp_path).translate("Hello.", "en", "ru")


def test_split_sentences() -> None:
    assert split_sentences("A b. C d! E?\n\nF.") == [["A b.", "C d!", "E?"], [], ["F."]]
