"""GigaAM / Parakeet engines on onnx-asr, with a tiny random-weight GigaAM v3 CTC model built for the session."""

from __future__ import annotations

import fnmatch
import itertools
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy.signal import resample_poly

from app.engines.onnx_asr import OnnxAsrLoader, plan_batches, tokens_to_words
from app.engines.protocol import ChunkResult, Decoding
from app.engines.registry import MODELS
from app.errors import InvalidInput, ModelUnavailable
from app.weights.store import model_dir
from tests import fake_hub, gigaam_fixture
from tests.audio_helpers import load, weights_folder
from tests.fake_hub import FakeHub, closed_port_endpoint
from tests.server import AUDIO

tiny_gigaam_models_dir = gigaam_fixture.tiny_gigaam_models_dir  # the fixture, for this module

SR = 16_000


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    data = data.reshape(-1, channels).mean(axis=1)
    if rate != SR:
        data = resample_poly(data, SR, rate).astype(np.float32)
    return data


@pytest.fixture(scope="module")
def chunks() -> list[np.ndarray]:
    cities = read_wav(AUDIO / "two_cities.wav")
    beckett = read_wav(AUDIO / "beckett.wav")
    return [
        cities[: 20 * SR],
        beckett,
        cities[20 * SR : 27 * SR],
        np.zeros(3 * SR, dtype=np.float32),  # silence
        cities[27 * SR : 27 * SR + 800],  # 50 ms: too short to hold a word
        cities[30 * SR : 44 * SR],
    ]


def check_structure(results: list[ChunkResult], chunks: list[np.ndarray]) -> None:
    assert len(results) == len(chunks)
    for result, chunk in zip(results, chunks, strict=True):
        assert isinstance(result, ChunkResult)
        assert result.language == "ru"
        duration = chunk.size / SR
        for seg in result.segments:
            assert seg.words
            assert seg.text == " ".join(w.word for w in seg.words)
            assert 0.0 <= seg.start <= seg.end <= duration
            previous_start = 0.0
            for w in seg.words:
                assert w.word and w.word == w.word.strip()
                assert previous_start <= w.start <= w.end <= duration
                assert w.probability is not None and 0.0 <= w.probability <= 1.0
                previous_start = w.start


def test_transcribes_real_audio_with_word_timestamps(tiny_gigaam_models_dir: Path, chunks) -> None:
    engine = load("v3_ctc", tiny_gigaam_models_dir, num_threads=2)
    assert engine.info == MODELS["v3_ctc"].info
    results = engine.transcribe(chunks, Decoding(language="ru"))
    check_structure(results, chunks)
    assert results[4].segments == ()  # too short
    assert sum(len(s.words) for r in results for s in r.segments) > 10  # the random model does emit "words"
    assert engine.transcribe([], Decoding(language=None)) == []


def test_batching_matches_single_chunk_results(tiny_gigaam_models_dir: Path, chunks) -> None:
    single = load("v3_ctc", tiny_gigaam_models_dir, num_threads=2)
    batched = load("v3_ctc", tiny_gigaam_models_dir, num_threads=2, batch_size=4)
    same_length = [chunks[0], chunks[0].copy(), chunks[0][::-1].copy()]
    one_by_one = single.transcribe(same_length, Decoding(language=None))
    together = batched.transcribe(same_length, Decoding(language=None))
    assert [r.segments[0].text for r in together] == [r.segments[0].text for r in one_by_one]
    check_structure(batched.transcribe(chunks, Decoding(language="ru")), chunks)


def test_int8_variant_loads_and_transcribes(tiny_gigaam_models_dir: Path, chunks) -> None:
    engine = load("v3_ctc", tiny_gigaam_models_dir, quantization="int8", num_threads=1)
    check_structure(engine.transcribe(chunks[:2], Decoding(language="ru")), chunks[:2])


def test_rejects_other_language_and_translation(tiny_gigaam_models_dir: Path, chunks) -> None:
    engine = load("v3_ctc", tiny_gigaam_models_dir, num_threads=1)
    with pytest.raises(InvalidInput) as exc:
        engine.transcribe(chunks[:1], Decoding(language="en"))
    assert exc.value.about == "language"
    with pytest.raises(InvalidInput):
        engine.transcribe(chunks[:1], Decoding(language="ru", task="translate"))


@pytest.mark.parametrize("name", ["v3_ctc", "nvidia/parakeet-tdt-0.6b-v2"])
def test_missing_weights_and_unreachable_hub(tmp_path: Path, name: str) -> None:
    with pytest.raises(ModelUnavailable) as exc:
        load(name, tmp_path, endpoint=closed_port_endpoint())
    message = exc.value.message
    assert "\n" not in message
    assert str(model_dir(name, tmp_path)) in message and "unreachable" in message
    assert f"python -m app download {name}" in message
    assert list(tmp_path.iterdir()) == []
    assert not [p for p in tmp_path.rglob("*") if p.is_dir() and ".partial-" in p.name]


def test_parakeet_info() -> None:
    info = MODELS["nvidia/parakeet-tdt-0.6b-v2"].info
    assert info.name == "nvidia/parakeet-tdt-0.6b-v2"
    assert info.languages == frozenset({"en"})
    assert not info.can_translate
    assert info.supports("en") and not info.supports("ru")


hub = fake_hub.hub  # the fixture, for this module


def repo_of(name: str) -> str:
    spec = MODELS[name].weights
    assert spec is not None
    return spec.repo


@pytest.fixture
def gigaam_hub(hub: FakeHub, tiny_gigaam_models_dir: Path) -> FakeHub:
    """The fake hub publishing the tiny random-weight v3 CTC files (fp32 and int8) as istupakov/gigaam-v3-onnx."""
    hub.serve_folder(repo_of("v3_ctc"), tiny_gigaam_models_dir / "v3_ctc")
    return hub


def test_fetches_missing_files_from_the_hub(tmp_path: Path, gigaam_hub: FakeHub, chunks) -> None:
    folder = weights_folder("v3_ctc", tmp_path, endpoint=gigaam_hub.url)
    assert folder == tmp_path / "v3_ctc"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "v3_ctc.onnx", "v3_vocab.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["v3_ctc"]  # no staging folder left behind
    assert {p for p, _ in gigaam_hub.cdn_requests()} == {
        f"/cdn/istupakov/gigaam-v3-onnx/{f}" for f in ("config.json", "v3_ctc.onnx", "v3_vocab.txt")
    }
    for name in ("config.json", "v3_ctc.onnx", "v3_vocab.txt"):
        assert (folder / name).read_bytes() == gigaam_hub.repo("istupakov/gigaam-v3-onnx")[name].content

    # Second call: no network at all. Asking for int8 fetches only the int8 graph into the existing folder.
    gigaam_hub.requests.clear()
    assert weights_folder("v3_ctc", tmp_path, endpoint=gigaam_hub.url) == folder
    assert gigaam_hub.requests == []
    engine = load("v3_ctc", tmp_path, quantization="int8", endpoint=gigaam_hub.url)
    assert (folder / "v3_ctc.int8.onnx").is_file()
    assert [p for p, _ in gigaam_hub.cdn_requests()] == ["/cdn/istupakov/gigaam-v3-onnx/v3_ctc.int8.onnx"]
    check_structure(engine.transcribe(chunks[:1], Decoding(language="ru")), chunks[:1])


def test_hub_without_the_repo_is_unavailable(tmp_path: Path, gigaam_hub: FakeHub) -> None:
    with pytest.raises(ModelUnavailable) as exc:
        weights_folder("v2_ctc", tmp_path, endpoint=gigaam_hub.url)  # the fake hub only has the v3 repo
    assert "\n" not in exc.value.message and "not found" in exc.value.message
    assert list(tmp_path.iterdir()) == []


def test_spec_table_matches_onnx_asr_file_names() -> None:
    from onnx_asr.loader import create_asr_resolver
    from onnx_asr.resolver import model_repos

    onnx_entries = [entry for entry in MODELS.values() if entry.info.family in ("gigaam", "parakeet")]
    assert len(onnx_entries) == 9  # six GigaAM v2/v3, two GigaAM Multilingual, one Parakeet
    for entry in onnx_entries:
        name, spec, loader = entry.name, entry.weights, entry.loader
        assert isinstance(loader, OnnxAsrLoader) and spec is loader.weights and loader.frame_seconds > 0
        assert model_repos[loader.onnx_asr_name] == spec.repo
        model_type = create_asr_resolver(loader.onnx_asr_name).model_type
        for quantization in (None, "int8"):
            ours = spec.files_for(quantization)
            for pattern in model_type._get_model_files(quantization).values():
                assert sum(fnmatch.fnmatch(f, pattern) for f in ours) == 1, (name, quantization, pattern)


def test_corrupt_model_folder_is_unavailable(tmp_path: Path, tiny_gigaam_models_dir: Path) -> None:
    shutil.copytree(tiny_gigaam_models_dir / "v3_ctc", tmp_path / "v3_ctc")
    (tmp_path / "v3_ctc" / "v3_ctc.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelUnavailable) as exc:
        load("v3_ctc", tmp_path, num_threads=1)
    assert "\n" not in exc.value.message


TOKENS = st.lists(st.tuples(st.sampled_from([" ", " а", "б", "в", " гд", "е", "  "]), st.floats(0.0, 0.2)), max_size=40)


@given(TOKENS, st.floats(0.5, 30.0))
@example([(" ", 0.1875), (" ", 0.1875), (" ", 0.1875), (" а", 0.125)], 0.6875)  # ms rounding once gave 0.688
def test_tokens_to_words_invariants(pairs: list[tuple[str, float]], duration: float) -> None:
    tokens = [t for t, _ in pairs]
    timestamps = list(np.cumsum([d for _, d in pairs]))
    words = tokens_to_words(tokens, timestamps, duration, 0.04, [-0.1] * len(tokens))
    assert " ".join(w.word for w in words) == " ".join("".join(tokens).split())
    for a, b in itertools.pairwise(words):
        assert a.start <= b.start
    for w in words:
        assert 0.0 <= w.start <= w.end <= duration
        assert w.word and " " not in w.word


@given(st.lists(st.integers(1, 500_000), max_size=30), st.integers(1, 8))
def test_plan_batches_invariants(lengths: list[int], batch_size: int) -> None:
    batches = plan_batches(lengths, batch_size)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        sizes = [lengths[i] for i in batch]
        assert max(sizes) <= min(sizes) * 1.25
