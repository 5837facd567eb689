"""Weights: the registry's files of each model, the MODELS_DIR layout and `python -m app download` (fake hub)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engines.registry import MODELS, WHISPER_REPOS
from app.errors import ModelUnavailable
from app.settings import HubSettings
from app.weights.cli import main as download_main
from app.weights.specs import ModelSpec
from app.weights.store import ensure_model_files, missing_files, model_dir
from tests import fake_hub
from tests.audio_helpers import bundled_tiny_en
from tests.fake_hub import FakeHub, HubFile, closed_port_endpoint

hub = fake_hub.hub  # the fixture, for this module
MODEL_SPECS: dict[str, ModelSpec] = {name: e.weights for name, e in MODELS.items() if e.weights is not None}


def test_whisper_entries_match_faster_whisper() -> None:
    """Every Whisper name the catalog offers maps to the repository faster-whisper's own download would use, with
    the files its `download_model` fetches (faster_whisper/utils.py allow_patterns)."""
    from faster_whisper.utils import _MODELS

    whisper = {name: spec for name, spec in MODEL_SPECS.items() if MODELS[name].info.family == "whisper"}
    assert set(whisper) == set(WHISPER_REPOS)
    for name, spec in whisper.items():
        assert spec.repo == _MODELS[name], name
        assert set(spec.files) | set(spec.optional) == {
            "config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"
        }  # fmt: skip
    assert [n for n, s in whisper.items() if s.bundled] == ["tiny.en"]
    assert "preprocessor_config.json" in MODEL_SPECS["large-v3"].files  # 128 mel bins: required, not optional


def test_model_dir_is_one_flat_level(tmp_path: Path) -> None:
    assert model_dir("v3_ctc", tmp_path) == tmp_path / "v3_ctc"
    assert model_dir("nvidia/parakeet-tdt-0.6b-v2", tmp_path) == tmp_path / "nvidia--parakeet-tdt-0.6b-v2"
    assert all(model_dir(name, tmp_path).parent == tmp_path for name in MODEL_SPECS)


def test_quantization_selects_files() -> None:
    spec = MODEL_SPECS["nvidia/parakeet-tdt-0.6b-v2"]
    assert "encoder-model.onnx.data" in spec.files_for(None)
    assert spec.files_for("int8") == (
        "encoder-model.int8.onnx",
        "decoder_joint-model.int8.onnx",
        "vocab.txt",
        "config.json",
    )
    assert missing_files("v3_ctc", MODEL_SPECS["v3_ctc"], Path("/nonexistent"), None) == [
        "v3_ctc.onnx",
        "v3_vocab.txt",
        "config.json",
    ]


# ---- CLI --------------------------------------------------------------------------------------------------------


@pytest.fixture
def offline_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder with MODELS_DIR=./models and a hub that refuses connections."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())
    return tmp_path


def test_cli_bundled_model_needs_nothing(offline_cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert download_main(["tiny.en"]) == 0
    assert "nothing to download" in capsys.readouterr().out
    assert not (offline_cwd / "models").exists()


def test_cli_unknown_model(offline_cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert download_main(["no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_cli_downloads_default_model_from_settings(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MODEL, MODELS_DIR and QUANTIZATION come from .env; only the int8 files of that model are fetched."""
    repo = hub.repo(MODEL_SPECS["v3_e2e_ctc"].repo)
    for name in ["v3_e2e_ctc.onnx", "v3_e2e_ctc.int8.onnx", "v3_e2e_ctc_vocab.txt", "config.json", "v3_ctc.onnx"]:
        repo[name] = HubFile(name.encode() * 100, lfs=name.endswith(".onnx"))
    repo["README.md"] = HubFile(b"# not wanted", lfs=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"MODEL=v3_e2e_ctc\nMODELS_DIR={tmp_path / 'models'}\nQUANTIZATION=int8\n")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    assert download_main([]) == 0
    folder = tmp_path / "models" / "v3_e2e_ctc"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "v3_e2e_ctc.int8.onnx", "v3_e2e_ctc_vocab.txt"]
    assert capsys.readouterr().out.strip() == f"v3_e2e_ctc: ready in {folder}"


def test_cli_offline_returns_one_line_error(offline_cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert download_main(["nvidia/parakeet-tdt-0.6b-v2"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: nvidia/parakeet-tdt-0.6b-v2: model hub http://127.0.0.1:") and "\n" not in err


def test_unwritable_models_dir_is_one_line_unavailable(hub: FakeHub, tmp_path: Path) -> None:
    hub.serve_folder(MODEL_SPECS["base.en"].repo, bundled_tiny_en())
    not_a_dir = tmp_path / "models"
    not_a_dir.write_text("a file where MODELS_DIR should be")
    with pytest.raises(ModelUnavailable) as exc:
        hub_settings = HubSettings(hf_endpoint=hub.url)
        ensure_model_files("base.en", MODEL_SPECS["base.en"], not_a_dir, hub=hub_settings, progress=False)
    assert "\n" not in exc.value.message and f"cannot write to {not_a_dir}" in exc.value.message
