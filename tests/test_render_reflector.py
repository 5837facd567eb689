"""Reflector upload semantics and response shapes (seed 002), pure."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import InvalidInput
from app.render.reflector import (
    is_reflector_form,
    plan_upload,
    reflector_transcript,
    render_upload,
    shift_words,
)
from app.transcript import Word


def test_form_detection() -> None:
    assert is_reflector_form([], ["files"])
    assert is_reflector_form([], ["files[]"])
    assert is_reflector_form(["batch"], ["file"])
    assert not is_reflector_form(["language", "model"], ["file"])
    assert not is_reflector_form(["response_format"], [])


def test_single_file() -> None:
    plan = plan_upload({"language": ["en"]}, ["file"])
    assert plan.file_indices == (0,) and not plan.multiple and plan.language == "en" and plan.model is None


def test_many_files_and_batch() -> None:
    plan = plan_upload({"batch": ["true"], "model": ["whisper-1"]}, ["files", "files[]"])
    assert plan.file_indices == (0, 1) and plan.multiple and plan.batch and plan.model == "whisper-1"
    assert plan_upload({}, ["files", "files"]).multiple
    one = plan_upload({"batch": ["false"]}, ["files"])
    assert one.file_indices == (0,) and not one.multiple
    assert plan_upload({"batch": ["true"]}, ["files"]).multiple


def test_default_language_is_en() -> None:
    assert plan_upload({"language": [""]}, ["file"]).language == "en"
    assert plan_upload({"language": ["ru"]}, ["files"]).language == "ru"


@pytest.mark.parametrize(
    ("fields", "files", "match"),
    [
        ({}, [], "Missing"),
        ({"batch": ["true"]}, [], "Missing"),
        ({}, ["file", "files"], "not both"),
        ({"batch": ["true"]}, ["file"], "requires 'files'"),
        ({"batch": ["maybe"]}, ["files"], "batch"),
        ({}, ["file", "file"], "one 'file'"),
    ],
)
def test_bad_uploads(fields: dict[str, list[str]], files: list[str], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        plan_upload(fields, files)


WORDS = [Word("Hello", 0.0, 0.5), Word("world.", 0.5, 1.0)]


def test_words_carry_their_space_and_text_is_the_join() -> None:
    result = reflector_transcript(WORDS, filename="a.wav")
    body = msgspec.json.decode(msgspec.json.encode(result))
    assert body == {
        "text": "Hello world.",
        "words": [{"word": " Hello", "start": 0.0, "end": 0.5}, {"word": " world.", "start": 0.5, "end": 1.0}],
        "filename": "a.wav",
    }
    assert "".join(w["word"] for w in body["words"]).strip() == body["text"]


def test_from_url_shape_has_no_filename_and_is_shifted() -> None:
    body = msgspec.json.decode(msgspec.json.encode(reflector_transcript(WORDS, timestamp_offset=10.0)))
    assert set(body) == {"text", "words"}
    assert [(w["start"], w["end"]) for w in body["words"]] == [(10.0, 10.5), (10.5, 11.0)]


def test_render_upload_shapes() -> None:
    one = reflector_transcript(WORDS, filename="a.wav")
    single = msgspec.json.decode(render_upload(plan_upload({}, ["file"]), [one]))
    assert single["filename"] == "a.wav"
    many = msgspec.json.decode(render_upload(plan_upload({}, ["files", "files"]), [one, one]))
    assert list(many) == ["results"] and len(many["results"]) == 2


def test_overlapping_end_clamped() -> None:
    words = [Word("a", 1.0, 2.5), Word("b", 2.0, 3.0), Word("c", 3.5, 3.4)]
    shifted = shift_words(words, 5.0)
    assert [(w.start, w.end) for w in shifted] == [(6.0, 7.0), (7.0, 8.0), (8.5, 8.5)]


def test_non_finite_offset_refused() -> None:
    with pytest.raises(InvalidInput):
        shift_words(WORDS, float("nan"))


times = st.floats(0, 1000, allow_nan=False)
word_lists = st.lists(
    st.tuples(times, st.floats(0, 5, allow_nan=False), st.text("abcxyz.,", min_size=1, max_size=6)), max_size=20
).map(lambda xs: [Word(t, s, round(s + d, 3)) for s, d, t in sorted((s, d, t) for s, d, t in xs)])


@given(word_lists, st.floats(0, 10_000, allow_nan=False))
def test_shift_invariants(words: list[Word], offset: float) -> None:
    shifted = shift_words(words, offset)
    assert len(shifted) == len(words)
    for i, w in enumerate(shifted):
        assert w.start <= w.end
        if i + 1 < len(shifted):
            assert w.end <= shifted[i + 1].start
    result = reflector_transcript(words, timestamp_offset=offset)
    assert "".join(w.word for w in result.words).strip() == result.text
    assert all(w.word.startswith(" ") for w in result.words)
