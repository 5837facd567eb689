"""Hypothesis strategies for realistic transcripts: ordered words, random gaps, long and non-Latin words."""

from __future__ import annotations

from hypothesis import strategies as st

from app.transcript import Segment, Transcript, Word

LETTERS = "abcdefghijklmnopqrstuvwxyzABCXYZабвгдежзийклмнопрстуфхцчшщъыьэюяЁЖЩé'-&<>0123456789"
PUNCTUATION = ["", "", "", "", ".", ",", "?", "!", ";", ":", "…", '."']

word_texts = st.one_of(
    st.text(st.sampled_from(LETTERS), min_size=1, max_size=12),
    st.text(st.sampled_from(LETTERS), min_size=30, max_size=60),  # compound words, URLs, engine glitches
).flatmap(lambda w: st.sampled_from(PUNCTUATION).map(lambda p: w + p))

gaps = st.one_of(
    st.floats(0.0, 0.3),
    st.floats(0.3, 3.0),
    st.floats(3.0, 3600.0),  # silence; a few of these reach ten hours
)
word_lengths = st.one_of(st.floats(0.0, 1.2), st.floats(5.0, 9.0))  # a rare very slow word


@st.composite
def transcripts(draw: st.DrawFn, max_segments: int = 12) -> Transcript:
    t = draw(st.floats(0.0, 36_000.0))  # up to ten hours in, so times reach eleven
    segments = []
    for _ in range(draw(st.integers(0, max_segments))):
        t += draw(gaps)
        texts = draw(st.lists(word_texts, max_size=30))
        if draw(st.booleans()) and texts:  # with word timings
            words = []
            for text in texts:
                start = round(t, 3)
                t += draw(word_lengths)
                words.append(Word(text, start, round(t, 3), draw(st.floats(0.0, 1.0))))
                t += draw(st.floats(0.0, 0.3)) if draw(st.integers(0, 9)) else draw(st.floats(0.3, 3.0))
            segments.append(Segment(words[0].start, words[-1].end, " ".join(texts), tuple(words)))
        else:  # text only (or empty), like an engine without timestamps
            start = round(t, 3)
            t += draw(st.floats(0.0, 25.0))
            segments.append(Segment(start, round(t, 3), " ".join(texts)))
    duration = round(t + draw(st.floats(0.0, 5.0)), 3)
    return Transcript(draw(st.sampled_from(["en", "ru", "de", "xx"])), duration, tuple(segments))
