"""The CPU rewrite of published ONNX graphs (app/engines/onnx_graph.py): same answers, faster kernels, cached once.

Runs on tiny random-weight GigaAM v3 models of the real architecture, exported and int8-quantized the way the
published files were (tools/gigaam_build.py), CTC and RNN-T.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as rt
import pytest

from app.audio.decode import decode_all
from app.engines.onnx_graph import CACHE_DIR, GraphPasses, optimized_folder
from app.engines.protocol import Decoding
from app.engines.registry import MODELS, load_engine, speech_loader
from app.settings import EngineSettings
from app.weights.cli import main as download_main
from tests import fake_hub
from tests.fake_hub import FakeHub
from tests.server import AUDIO


def ops(path: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def run(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    options = rt.SessionOptions()
    options.log_severity_level = 3
    session = rt.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def speech_features(seconds: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """GigaAM v3 log-mel features of real speech, as onnx-asr computes them (batch of one)."""
    from onnx_asr.preprocessors.numpy_preprocessor import GigaamPreprocessorNumpy

    audio = decode_all(AUDIO / "two_cities.wav")[: int(seconds * 16000)]
    preprocessor = GigaamPreprocessorNumpy("gigaam_v3")
    return preprocessor(audio[None, :].astype(np.float32), np.array([audio.size], dtype=np.int64))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tools.gigaam_build import write_model_dir

    root = tmp_path_factory.mktemp("graphs")
    write_model_dir(root / "v3_ctc", size="tiny", int8=True)
    write_model_dir(root / "v3_rnnt", size="tiny", int8=True, head="rnnt")
    return root


CPU = GraphPasses(cpu=True)  # the int8 rewrite alone (BATCH_SIZE=1)


def settings_for(models_dir: Path, quantization: str = "int8", **extra: object) -> EngineSettings:
    return EngineSettings(models_dir=models_dir, quantization=quantization, num_threads=2, device="cpu", **extra)  # type: ignore[arg-type]


def test_int8_graph_loses_its_conv_integer_and_gives_the_same_tokens(models: Path, tmp_path: Path) -> None:
    """int8 kernels differ between CPUs (VNNI, AVX2 without it), so the rewrite is judged against int8's own error on
    this machine, measured here: the fp32 graph the int8 one was quantized from is the reference."""
    published = models / "v3_ctc" / "v3_ctc.int8.onnx"
    assert "ConvInteger" in ops(published)  # what quantize_dynamic makes of every Conv
    with optimized_folder(models / "v3_ctc", ["v3_ctc.int8.onnx", "v3_vocab.txt", "config.json"], "int8", CPU) as f:
        rewritten = f.path / "v3_ctc.int8.onnx"
        assert "ConvInteger" not in ops(rewritten)
        features, lengths = speech_features()
        feeds = {"features": features, "feature_lengths": lengths}
        before, after = run(published, feeds), run(rewritten, feeds)
        exact = run(models / "v3_ctc" / "v3_ctc.onnx", feeds)  # fp32
    assert after.shape == before.shape == exact.shape
    # The same tokens, but where the published graph itself is not sure: a frame whose token changes is a near-tie,
    # its two tokens closer (in the published logits) than int8 moved that frame's logits from fp32.
    changed = after.argmax(-1) != before.argmax(-1)
    noise = np.abs(before - exact).max(-1)
    top = np.take_along_axis(before, before.argmax(-1)[..., None], -1)[..., 0]
    chosen = np.take_along_axis(before, after.argmax(-1)[..., None], -1)[..., 0]
    margin = top - chosen
    assert (margin < noise)[changed].all(), f"tokens changed: margins {margin[changed]}, int8 noise {noise[changed]}"
    # As close to the fp32 model as the published int8 graph (same int8 weights, finer convolutions): its error is of
    # the order of int8's own, at most twice it.
    assert rms(after, exact) <= 2 * rms(before, exact), (rms(after, exact), rms(before, exact))


def test_fp32_graphs_have_nothing_to_rewrite_and_load_as_published(models: Path) -> None:
    with optimized_folder(models / "v3_ctc", ["v3_ctc.onnx", "v3_vocab.txt", "config.json"], None, CPU) as f:
        assert (f.path / "v3_ctc.onnx").resolve() == (models / "v3_ctc" / "v3_ctc.onnx").resolve()


def test_rewrite_is_built_once_and_rebuilt_when_the_weights_change(
    models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = models / "v3_rnnt"
    files = MODELS["v3_rnnt"].weights.files_for("int8")  # type: ignore[union-attr]
    cache = models / CACHE_DIR / "v3_rnnt.int8+cpu"
    logs = logging.INFO, "app.engines.onnx_graph"
    with caplog.at_level(*logs), optimized_folder(folder, files, "int8", CPU) as f:
        assert f.path == cache
    built = (cache / "v3_rnnt_encoder.int8.onnx").stat().st_mtime_ns
    assert any(r.getMessage() == "model graph rewritten" for r in caplog.records)
    caplog.clear()
    with caplog.at_level(*logs), optimized_folder(folder, files, "int8", CPU) as f:
        assert f.path == cache
    assert not caplog.records  # a second start reads the cache
    assert (cache / "v3_rnnt_encoder.int8.onnx").stat().st_mtime_ns == built
    assert (cache / "v3_vocab.txt").resolve() == (folder / "v3_vocab.txt").resolve()  # the rest is linked
    source = folder / "v3_rnnt_encoder.int8.onnx"
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 1_000_000_000))
    with optimized_folder(folder, files, "int8", CPU) as f:
        assert (f.path / "v3_rnnt_encoder.int8.onnx").stat().st_mtime_ns != built
    assert not [p for p in (models / CACHE_DIR).iterdir() if p.name.startswith(".")]  # no staging left behind


@pytest.mark.parametrize("quantization", ["none", "int8"])
def test_rnnt_engine_transcribes_through_the_rewrite(models: Path, quantization: str) -> None:
    engine = load_engine("v3_rnnt", settings_for(models, quantization))
    audio = decode_all(AUDIO / "two_cities.wav")[: 10 * 16000]
    (result,) = engine.transcribe([audio], Decoding(language="ru"))
    words = [w for s in result.segments for w in s.words]
    assert sum(len(w.word) for w in words) > 20  # the random joint emits a letter on about half the frames
    assert all(0.0 <= w.start <= w.end <= 10.0 for w in words)


def test_unwritable_models_dir_rewrites_into_a_temporary_folder_removed_after_loading(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(models / "v3_ctc", tmp_path / "ro" / "v3_ctc")
    (tmp_path / "ro" / CACHE_DIR).write_text("")  # the cache cannot be created there (as if mounted read-only)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)
    with optimized_folder(tmp_path / "ro" / "v3_ctc", ["v3_ctc.int8.onnx"], "int8", CPU) as f:
        assert f.path.is_relative_to(scratch) and "ConvInteger" not in ops(f.path / "v3_ctc.int8.onnx")
    assert not list(scratch.iterdir())


def test_a_graph_the_rewrite_cannot_read_loads_as_published(
    tmp_path: Path, models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "v3_ctc"
    shutil.copytree(models / "v3_ctc", folder)
    (folder / "v3_ctc.int8.onnx").write_bytes(b"not a graph")
    with caplog.at_level(logging.WARNING), optimized_folder(folder, ["v3_ctc.int8.onnx"], "int8", CPU) as loaded:
        assert loaded.path == folder and not loaded.rewritten
    assert any(r.getMessage() == "model graph left as published" for r in caplog.records)
    assert not (tmp_path / CACHE_DIR / "v3_ctc.int8+cpu").exists()


def test_optimize_graphs_off_loads_the_published_folder(models: Path, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(models / "v3_ctc", folder / "v3_ctc")
    engine = load_engine("v3_ctc", settings_for(folder, optimize_graphs=False))
    assert engine.info.name == "v3_ctc"
    assert not (folder / CACHE_DIR).exists()


hub = fake_hub.hub  # the fixture, for this module


def test_download_prepares_the_cpu_graphs_so_the_first_start_loads_them(
    hub: FakeHub,
    models: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub.serve_folder(MODELS["v3_ctc"].weights.repo, models / "v3_ctc")  # type: ignore[union-attr]
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"MODEL=v3_ctc\nMODELS_DIR={tmp_path / 'models'}\nQUANTIZATION=int8\n")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    assert download_main([]) == 0
    cache = tmp_path / "models" / CACHE_DIR / "v3_ctc.int8+cpu"
    assert f"v3_ctc: graphs rewritten (int8+cpu) in {cache}" in capsys.readouterr().out
    caplog.clear()  # the download's own lines
    with caplog.at_level(logging.INFO, logger="app.engines.onnx_graph"):  # the server's loader
        engine = speech_loader(MODELS["v3_ctc"], 1)(tmp_path / "models" / "v3_ctc", settings_for(tmp_path / "models"))
    rewrites = [r for r in caplog.records if r.name == "app.engines.onnx_graph"]
    assert engine.info.name == "v3_ctc" and not rewrites  # the cached graphs were used as they are
