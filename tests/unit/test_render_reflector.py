"""Reflector's response shapes (seed 002), pure."""

from __future__ import annotations

import msgspec

from app.render.reflector import reflector_transcript, render_upload, shift_words
from app.transcript import Word

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
    single = msgspec.json.decode(render_upload([one], multiple=False))
    assert single["filename"] == "a.wav"
    many = msgspec.json.decode(render_upload([one, one], multiple=True))
    assert list(many) == ["results"] and len(many["results"]) == 2


def test_overlapping_end_clamped() -> None:
    words = [Word("a", 1.0, 2.5), Word("b", 2.0, 3.0), Word("c", 3.5, 3.4)]
    shifted = shift_words(words, 5.0)
    assert [(w.start, w.end) for w in shifted] == [(6.0, 7.0), (7.0, 8.0), (8.5, 8.5)]
