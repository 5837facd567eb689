"""Exact batching (ADR 58): a chunk gives the same tokens alone and padded into a batch with chunks of other lengths.

Every onnx-asr GigaAM kind we can build with random weights (tools/gigaam_build.py: the real v2 and v3
architectures, exported as gigaam's `to_onnx` does, with a batch of one and so without an attention mask), fp32, on
real speech: the published-style graph leaks padding into the shorter chunks; with the padding-mask pass
(`app.engines.onnx_masks`) and per-chunk features the logits agree within 1e-3 and every argmax agrees. The e2e
kinds have the same encoder and heads as the char ones (only the vocabulary differs, which the builder does not
make): here they are the char graphs under the e2e file names, loaded by onnx-asr's e2e classes.
Then the server: BATCH_SIZE=1 and 4 give the same text for a 10-minute file, and /metrics shows the batches.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnx
import onnxruntime as rt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from app.audio.decode import decode_all
from app.engines.onnx_masks import add_padding_masks
from app.engines.protocol import Decoding
from tests.audio_factory import tiled
from tests.audio_helpers import load
from tests.server import AUDIO, ServerProcess

SR = 16_000
# (registry name, builder version, head, graph whose output is compared, its (features, lengths) input names)
KINDS = {
    "v3_ctc": ("v3", "ctc", "v3_ctc.onnx", ("features", "feature_lengths")),
    "v2_ctc": ("v2", "ctc", "v2_ctc.onnx", ("features", "feature_lengths")),
    "v3_rnnt": ("v3", "rnnt", "v3_rnnt_encoder.onnx", ("audio_signal", "length")),
    "v2_rnnt": ("v2", "rnnt", "v2_rnnt_encoder.onnx", ("audio_signal", "length")),
}
E2E = {"v3_e2e_ctc": "v3_ctc", "v3_e2e_rnnt": "v3_rnnt"}  # e2e name -> the char model it is built from


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tools.gigaam_build import write_model_dir

    root = tmp_path_factory.mktemp("batching-models")
    for name, (version, head, _, _) in KINDS.items():
        write_model_dir(root / name, version=version, size="tiny", head=head)  # type: ignore[arg-type]
    for e2e, char in E2E.items():
        (root / e2e).mkdir()
        for source in (root / char).iterdir():
            renamed = source.name.replace(char, e2e).replace("v3_vocab", f"{e2e}_vocab")
            shutil.copy(source, root / e2e / renamed)
    return root


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return decode_all(AUDIO / "two_cities.wav")


def three_chunks(speech: np.ndarray, seconds: tuple[float, float, float] = (20, 17, 16)) -> list[np.ndarray]:
    """Three chunks of real speech of different lengths (as the VAD cuts them), from different places."""
    starts = (0, 20, 27)
    return [speech[int(a * SR) : int((a + s) * SR)] for a, s in zip(starts, seconds, strict=True)]


def features(version: str, chunks: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Each chunk's log-mel features alone (onnx-asr's preprocessor), and the padded batch of them."""
    from onnx_asr.preprocessors.numpy_preprocessor import GigaamPreprocessorNumpy

    preprocessor = GigaamPreprocessorNumpy(f"gigaam_{version}")
    alone = [preprocessor(c[None, :], np.array([c.size]))[0] for c in chunks]
    lengths = np.array([f.shape[-1] for f in alone], dtype=np.int64)
    batch = np.full((len(alone), alone[0].shape[1], lengths.max()), np.log(1e-9), dtype=np.float32)  # log-mel of 0
    for i, f in enumerate(alone):
        batch[i, :, : f.shape[-1]] = f[0]
    return alone, batch, lengths


def session(model: onnx.ModelProto) -> rt.InferenceSession:
    options = rt.SessionOptions()
    options.log_severity_level = 3
    return rt.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def alone_and_batched(model: onnx.ModelProto, names: tuple[str, str], version: str, chunks: list[np.ndarray]):
    """Per chunk: (its output alone, its rows of the batched output), over its own frames; frames on axis 1."""
    alone, batch, lengths = features(version, chunks)
    run = session(model)
    batched = run.run(None, {names[0]: batch, names[1]: lengths})[0]
    encoder = names[0] == "audio_signal"  # an RNN-T encoder: (B, d, T), time last
    pairs = []
    for i, f in enumerate(alone):
        single = run.run(None, {names[0]: f, names[1]: lengths[i : i + 1]})[0][0]
        row = batched[i]
        if encoder:
            single, row = single.T, row.T
        pairs.append((single, row[: single.shape[0]]))
    return pairs


@pytest.mark.parametrize("name", list(KINDS))
def test_published_graph_leaks_padding_and_the_masked_one_does_not(models: Path, speech: np.ndarray, name: str) -> None:
    version, _, graph, names = KINDS[name]
    chunks = three_chunks(speech)
    published = onnx.load(str(models / name / graph))
    leaked = alone_and_batched(published, names, version, chunks)
    assert np.abs(leaked[0][0] - leaked[0][1]).max() < 1e-3  # the longest chunk has no padding
    assert max(np.abs(single - row).max() for single, row in leaked[1:]) > 0.1  # the shorter ones see it

    masks = add_padding_masks(published)
    assert (masks.frames, masks.attention, masks.already_masked) == (2, 2, 0)  # two subsampling convs, two layers
    for single, row in alone_and_batched(published, names, version, chunks):
        assert np.abs(single - row).max() < 1e-3
        assert (single.argmax(-1) == row.argmax(-1)).mean() == 1.0


@pytest.mark.parametrize("name", [*KINDS, *E2E])
def test_engine_gives_the_same_tokens_alone_and_batched(models: Path, speech: np.ndarray, name: str) -> None:
    # RNN-T: half as long (its random joint emits on most frames, and the greedy loop is slow); the CTC heads' sparse
    # letters need the full lengths
    chunks = three_chunks(speech, (10, 9, 8.2) if "rnnt" in name else (20, 17, 16))
    one_by_one = load(name, models, num_threads=2).transcribe(chunks, Decoding(language="ru"))
    batches: list[int] = []
    batched = load(name, models, num_threads=2, batch_size=3, on_batch=batches.append)
    together = batched.transcribe(chunks, Decoding(language="ru"))
    assert batches == [3]  # one onnxruntime run for the three (their lengths are within the padding limit)
    assert [r.segments for r in together] == [r.segments for r in one_by_one]
    letters = sum(len(w.word) for r in one_by_one for s in r.segments for w in s.words)
    # tokens to compare (the random v2 joint emits none on these chunks: its encoder is compared in the graph test)
    assert letters >= 5 or name == "v2_rnnt"


def test_int8_runs_one_chunk_at_a_time_whatever_batch_size_says(models: Path, speech: np.ndarray) -> None:
    """Dynamic int8 quantizes activations with one scale per tensor, over the whole batch: not exact, so not made."""
    from tools.gigaam_build import quantize_int8

    quantize_int8(models / "v3_ctc" / "v3_ctc.onnx", models / "v3_ctc" / "v3_ctc.int8.onnx")
    runs: list[int] = []
    engine = load("v3_ctc", models, quantization="int8", num_threads=2, batch_size=4, on_batch=runs.append)
    engine.transcribe(three_chunks(speech, (10, 9, 8.2)), Decoding(language="ru"))
    assert runs == [1, 1, 1]
    assert not [p for p in (models / ".optimized").iterdir() if p.name.startswith("v3_ctc.int8") and "masks" in p.name]


def test_a_graph_traced_with_a_batch_keeps_its_attention_mask(models: Path, speech: np.ndarray, tmp_path: Path) -> None:
    """Exports traced with more than one utterance carry gigaam's own attention mask: the pass leaves it alone and
    masks only the subsampling (which gigaam leaves unmasked whatever the batch)."""
    import torch

    from tools.gigaam_build import FEATURES, _export, build_model

    path = tmp_path / "v3_ctc.onnx"
    example = (torch.zeros(2, FEATURES, 200), torch.tensor([200, 150]))
    dynamic = {"features": {0: "b", 2: "t"}, "feature_lengths": {0: "b"}, "log_probs": {0: "b", 1: "t"}}
    _export(build_model("v3", "tiny"), example, path, (["features", "feature_lengths"], ["log_probs"]), dynamic)
    traced = onnx.load(str(path))
    masks = add_padding_masks(traced)
    assert (masks.frames, masks.attention, masks.already_masked) == (2, 0, 2)
    for single, row in alone_and_batched(traced, ("features", "feature_lengths"), "v3", three_chunks(speech)):
        assert np.abs(single - row).max() < 1e-3


def test_the_pass_finds_its_own_masks_and_adds_none(models: Path) -> None:
    """Masks already there (as in exports that have them) are recognised at every site: a second pass is a no-op."""
    graph = onnx.load(str(models / "v3_ctc" / "v3_ctc.onnx"))
    assert add_padding_masks(graph).added == 4
    before = graph.SerializeToString()
    again = add_padding_masks(graph)
    assert (again.added, again.already_masked) == (0, 4)
    assert graph.SerializeToString() == before


def test_a_multilingual_export_keeps_its_own_masks(tiny_multilingual_models_dir: Path) -> None:
    """GigaAM Multilingual is exported with a batch (gigaam's newer export): its attention masks and the subsampling
    mask it has are found and kept; the one subsampling input it leaves unmasked gets one (tests/unit/
    test_multilingual_gigaam.py checks the engine's batches on it)."""
    graph = onnx.load(str(tiny_multilingual_models_dir / "multilingual_ctc" / "multilingual_ctc.onnx"))
    masks = add_padding_masks(graph)
    assert (masks.frames, masks.attention, masks.already_masked) == (1, 0, 3)


def test_graphs_without_a_lengths_input_are_not_touched(models: Path) -> None:
    for part in ("decoder", "joint"):
        graph = onnx.load(str(models / "v3_rnnt" / f"v3_rnnt_{part}.onnx"))
        before = graph.SerializeToString()
        assert add_padding_masks(graph).added == 0
        assert graph.SerializeToString() == before


@settings(max_examples=8, deadline=None)
@given(seconds=st.lists(st.floats(min_value=0.3, max_value=12.0), min_size=2, max_size=4))
def test_any_lengths_batch_exactly(models: Path, speech: np.ndarray, seconds: list[float]) -> None:
    """Whatever the lengths (down to a few frames), each chunk's rows equal its batch-of-one output (v2: conv2d)."""
    chunks = [speech[SR : SR + int(s * SR)] for s in seconds]
    graph = onnx.load(str(models / "v2_ctc" / "v2_ctc.onnx"))
    add_padding_masks(graph)
    for single, row in alone_and_batched(graph, ("features", "feature_lengths"), "v2", chunks):
        assert np.abs(single - row).max() < 1e-3


# Through the server: a 10-minute file, the random-weight v3 CTC (deterministic text), BATCH_SIZE 1 and 4.


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiled(AUDIO / "two_cities.wav", 600.0, tmp_path_factory.mktemp("long") / "ten_minutes.wav")


def batch_server(models_dir: Path, tmp: Path, batch_size: int) -> ServerProcess:
    return ServerProcess(
        {"MODEL": "v3_ctc", "MODELS_DIR": str(models_dir), "TMPDIR": str(tmp), "BATCH_SIZE": str(batch_size)},
        log_path=tmp / "server.log",
    )


def transcribe_and_count(server: ServerProcess, path: Path) -> tuple[str, dict[float, float]]:
    """The file's text, and the stt_engine_batch_chunks histogram as {upper bound: cumulative count}."""
    with path.open("rb") as f:
        response = httpx.post(
            f"{server.url}/v1/audio/transcriptions",
            files={"file": (path.name, f, "audio/wav")},
            data={"model": "v3_ctc", "response_format": "text"},
            timeout=600,
        )
    assert response.status_code == 200, response.text
    metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
    buckets = {
        float(s.labels["le"]): s.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "stt_engine_batch_chunks"
        for s in family.samples
        if s.name.endswith("_bucket")
    }
    return response.text, buckets


@pytest.fixture(scope="module")
def served(
    models: Path, long_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[int, tuple[str, dict[float, float]]]]:
    out = {}
    for batch_size in (1, 4):
        server = batch_server(models, tmp_path_factory.mktemp(f"batch{batch_size}"), batch_size)
        try:
            out[batch_size] = transcribe_and_count(server, long_file)
        finally:
            server.stop()
    yield out


def test_server_text_is_the_same_with_batch_size_1_and_4(served: dict[int, tuple[str, dict[float, float]]]) -> None:
    (one, _), (four, _) = served[1], served[4]
    assert len(one.split()) > 30
    assert four == one


def test_metrics_show_the_engine_batched_with_batch_size_4_only(
    served: dict[int, tuple[str, dict[float, float]]],
) -> None:
    _, one = served[1]
    _, four = served[4]
    assert one[1.0] == one[float("inf")] > 20  # every run held one chunk
    assert four[3.0] < four[4.0] == four[float("inf")]  # some runs held four chunks, none more
    assert four[float("inf")] < one[float("inf")]  # fewer runs for the same chunks
