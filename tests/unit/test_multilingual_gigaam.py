"""GigaAM Multilingual (`multilingual_ctc`, `multilingual_large_ctc`) on onnx-asr: tiny random-weight models of the
real shape under the published file names (tests/gigaam_fixture.py), loaded the way the server loads them, and
fetched from a fake hub that holds the published repositories' files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from app.engines.protocol import ChunkResult, Decoding
from app.engines.registry import MODELS
from app.errors import InvalidInput, ModelUnavailable
from app.weights.cli import main as download_main
from tests import fake_hub
from tests.audio_helpers import load
from tests.fake_hub import FakeHub, HubFile
from tests.server import AUDIO
from tests.unit.test_gigaam_engine import read_wav

NAMES = ["multilingual_ctc", "multilingual_large_ctc"]
SR = 16_000


def preprocessor_of(engine: object) -> str:
    """The feature extractor onnx-asr picked for the loaded model (from the folder's config.json)."""
    return str(engine._model.asr._preprocessor_name)  # type: ignore[attr-defined]


def check_words(results: list[ChunkResult], chunks: list[np.ndarray]) -> int:
    """Every chunk's words are ordered and inside it; returns how many words there are."""
    count = 0
    for result, chunk in zip(results, chunks, strict=True):
        assert result.language is None  # five languages: the model does not say which it heard
        for segment in result.segments:
            assert segment.text == " ".join(w.word for w in segment.words)
            previous = 0.0
            for word in segment.words:
                assert previous <= word.start <= word.end <= chunk.size / SR
                previous = word.start
            count += len(segment.words)
    return count


def test_entries_say_what_the_card_documents() -> None:
    for name in NAMES:
        info = MODELS[name].info
        assert info.family == "gigaam" and info.owned_by == "salute-developers" and not info.can_translate
        assert info.languages == frozenset({"ru", "kk", "ky", "uz", "en"})
        assert info.supports("ky") and not info.supports("de")
    assert MODELS["multilingual_large_ctc"].weights.files_for(None) == (  # type: ignore[union-attr]
        "multilingual_large_ctc.onnx",
        "multilingual_vocab.txt",
        "config.json",
        "multilingual_large_ctc.onnx.data",
    )
    assert MODELS["multilingual_ctc"].weights.files_for("int8") == (  # type: ignore[union-attr]
        "multilingual_ctc.int8.onnx",
        "multilingual_vocab.txt",
        "config.json",
    )


@pytest.mark.parametrize("quantization", ["none", "int8"])
@pytest.mark.parametrize("name", NAMES)
def test_loads_with_v3_features_and_transcribes_kazakh(
    tiny_multilingual_models_dir: Path, central_asian_speech: dict[str, Path], name: str, quantization: str
) -> None:
    engine = load(name, tiny_multilingual_models_dir, quantization=quantization, num_threads=2)
    assert engine.info == MODELS[name].info
    assert preprocessor_of(engine) == "gigaam_v3"
    chunks = [read_wav(central_asian_speech["kk"]), read_wav(AUDIO / "two_cities.wav")[: 20 * SR]]
    assert check_words(engine.transcribe(chunks, Decoding(language="kk")), chunks) > 5
    with pytest.raises(InvalidInput) as exc:
        engine.transcribe(chunks[:1], Decoding(language="de"))
    assert exc.value.about == "language"


def test_batching_is_exact(tiny_multilingual_models_dir: Path) -> None:
    """The graph holds the attention mask and the subsampling's padding masks (traced with a batch of eight, as
    gigaam has exported since April 2026): chunks of different lengths batched give what each gives alone."""
    speech = read_wav(AUDIO / "two_cities.wav")
    chunks = [speech[: 20 * SR], speech[20 * SR : 37 * SR], speech[27 * SR : 43 * SR]]
    alone = load("multilingual_ctc", tiny_multilingual_models_dir, num_threads=2)
    batched = load("multilingual_ctc", tiny_multilingual_models_dir, num_threads=2, batch_size=4)
    assert [r.segments for r in batched.transcribe(chunks, Decoding(language="ru"))] == [
        r.segments for r in alone.transcribe(chunks, Decoding(language="ru"))
    ]


def test_a_folder_without_the_published_config_is_refused(tiny_multilingual_models_dir: Path, tmp_path: Path) -> None:
    """Without config.json's "version" onnx-asr computes v2's features (fluent nonsense, no error): the loader
    refuses such a folder; one without config.json at all is completed from the hub first (here: unreachable)."""
    folder = tmp_path / "multilingual_ctc"
    shutil.copytree(tiny_multilingual_models_dir / "multilingual_ctc", folder)
    (folder / "config.json").unlink()
    with pytest.raises(ModelUnavailable) as exc:
        load("multilingual_ctc", tmp_path, endpoint=fake_hub.closed_port_endpoint())
    assert "missing config.json" in exc.value.message
    (folder / "config.json").write_text('{"model_type": "gigaam-multilingual-ctc", "features_size": 64}')
    with pytest.raises(ModelUnavailable) as exc:
        load("multilingual_ctc", tmp_path)
    assert "gigaam_v2 features, not gigaam_v3" in exc.value.message and "\n" not in exc.value.message


# --- `python -m app download` from a hub holding the published repositories ------------------------------------------

hub = fake_hub.hub  # the fixture, for this module

# What istupakov/gigaam-multilingual-{ctc,large-ctc}-onnx hold besides what onnx-asr needs (gigaam's `to_onnx` writes
# the yaml; ADR 49 lists the published sizes and hashes).
NOT_NEEDED = (".gitattributes", "README.md")


@pytest.fixture
def published(hub: FakeHub, tiny_multilingual_models_dir: Path) -> FakeHub:
    for name in NAMES:
        repo = MODELS[name].weights.repo  # type: ignore[union-attr]
        hub.serve_folder(repo, tiny_multilingual_models_dir / name)
        hub.repo(repo)[f"{name}.yaml"] = HubFile(b"model_name: " + name.encode(), lfs=False)
        for extra in NOT_NEEDED:
            hub.repo(repo)[extra] = HubFile(b"not wanted", lfs=False)
    return hub


@pytest.mark.parametrize("name", NAMES)
def test_download_lays_out_what_onnx_asr_loads(
    published: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    import onnx_asr

    models = tmp_path / "models"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELS_DIR", str(models))
    monkeypatch.setenv("HF_ENDPOINT", published.url)
    assert download_main([name]) == 0
    folder = models / name
    assert capsys.readouterr().out.strip() == f"{name}: ready in {folder}"
    fp32 = [f"{name}.onnx", *([f"{name}.onnx.data"] if name == "multilingual_large_ctc" else [])]
    assert sorted(p.name for p in folder.iterdir()) == sorted(["config.json", "multilingual_vocab.txt", *fp32])
    model = onnx_asr.load_model(MODELS[name].loader.onnx_asr_name, folder)  # type: ignore[union-attr]
    assert model.asr._preprocessor_name == "gigaam_v3"  # type: ignore[attr-defined]

    published.requests.clear()
    monkeypatch.setenv("QUANTIZATION", "int8")
    assert download_main([name]) == 0
    repo = MODELS[name].weights.repo  # type: ignore[union-attr]
    assert [p for p, _ in published.cdn_requests()] == [f"/cdn/{repo}/{name}.int8.onnx"]
    assert f"{name}: graphs rewritten (int8+cpu) in" in capsys.readouterr().out
    engine = load(name, models, quantization="int8", endpoint=fake_hub.closed_port_endpoint())
    assert preprocessor_of(engine) == "gigaam_v3"
