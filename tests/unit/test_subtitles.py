"""SRT and WebVTT: parse the output back strictly and check what a viewer would notice."""

from __future__ import annotations

import html
import re

from hypothesis import given, settings

from app.render import MAX_CUE_SECONDS, MAX_LINE_CHARS, MAX_LINES, render_srt, render_vtt
from app.transcript import Segment, Transcript, Word
from tests.render_strategies import transcripts

Cue = tuple[int, int, list[str]]


def _ms(clock: str, sep: str) -> int:
    m = re.fullmatch(rf"(\d{{2,}}):([0-5]\d):([0-5]\d){re.escape(sep)}(\d{{3}})", clock)
    assert m, clock
    h, mi, s, ms = map(int, m.groups())
    return ((h * 60 + mi) * 60 + s) * 1000 + ms


def parse_srt(text: str) -> list[Cue]:
    if not text:
        return []
    assert text.endswith("\n\n")
    cues = []
    for index, block in enumerate(text[:-2].split("\n\n"), start=1):
        number, timing, *lines = block.split("\n")
        assert number == str(index)
        start, end = timing.split(" --> ")
        cues.append((_ms(start, ","), _ms(end, ","), lines))
    return cues


def parse_vtt(text: str) -> list[Cue]:
    assert text.startswith("WEBVTT\n\n")
    body = text.removeprefix("WEBVTT\n\n")
    if not body:
        return []
    assert body.endswith("\n\n")
    cues = []
    for block in body[:-2].split("\n\n"):
        timing, *lines = block.split("\n")
        start, end = timing.split(" --> ")
        assert all("<" not in line and ">" not in line for line in lines)
        cues.append((_ms(start, "."), _ms(end, "."), [html.unescape(line) for line in lines]))
    return cues


def check_cues(cues: list[Cue], transcript: Transcript) -> None:
    previous_end = 0
    for start, end, lines in cues:
        assert previous_end <= start < end
        previous_end = end
        assert 1 <= len(lines) <= MAX_LINES and all(lines)
        single_word = len(lines) == 1 and " " not in lines[0]
        assert single_word or all(len(line) <= MAX_LINE_CHARS for line in lines)
        assert end - start <= MAX_CUE_SECONDS * 1000  # even a single slow word
    spoken = _words(transcript)
    assert " ".join(" ".join(lines) for _, _, lines in cues) == " ".join(spoken)


def _words(transcript: Transcript) -> list[str]:
    out: list[str] = []
    for seg in transcript.segments:
        out += [w.word for w in seg.words] if seg.words else seg.text.split()
    return out


@settings(max_examples=150, deadline=None)
@given(transcripts())
def test_srt_and_vtt_are_valid_readable_and_lose_no_word(transcript: Transcript) -> None:
    srt = parse_srt(render_srt(transcript))
    check_cues(srt, transcript)
    assert parse_vtt(render_vtt(transcript)) == srt


def _speech(text: str, start: float, seconds_per_word: float = 0.4, gap: float = 0.05) -> Segment:
    words, t = [], start
    for w in text.split():
        words.append(Word(w, round(t, 3), round(t + seconds_per_word - gap, 3)))
        t += seconds_per_word
    return Segment(start, words[-1].end, text, tuple(words))


PARAGRAPH = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light"
)


def test_a_20_second_segment_becomes_several_cues_that_follow_the_words() -> None:
    segment = _speech(PARAGRAPH, 0.0, seconds_per_word=20.0 / len(PARAGRAPH.split()))
    cues = parse_srt(render_srt(Transcript("en", 20.0, (segment,))))
    assert len(cues) >= 4
    check_cues(cues, Transcript("en", 20.0, (segment,)))
    assert cues[0][0] == 0 and cues[-1][1] >= 19_000
    # Cues end at commas, where the speaker would pause, not mid-phrase.
    assert sum(cue[2][-1].endswith(",") for cue in cues[:-1]) >= len(cues) // 2


def test_a_pause_after_a_sentence_starts_a_new_cue() -> None:
    first, second = _speech("Hello there.", 1.0), _speech("How are you?", 2.5)
    cues = parse_srt(render_srt(Transcript("en", 5.0, (first, second))))
    assert [c[2] for c in cues] == [["Hello there."], ["How are you?"]]


def test_a_short_cue_is_held_for_a_second_unless_the_next_one_starts() -> None:
    srt = render_srt(Transcript("en", 10.0, (_speech("Yes.", 1.0, 0.2), _speech("No.", 5.0, 0.2))))
    assert srt == "1\n00:00:01,000 --> 00:00:02,000\nYes.\n\n2\n00:00:05,000 --> 00:00:06,000\nNo.\n\n"


def test_long_text_is_balanced_over_two_lines() -> None:
    cues = parse_srt(
        render_srt(
            Transcript("en", 5.0, (_speech("one two three four five six seven eight nine ten eleven", 0.0, 0.3),))
        )
    )
    assert [len(c[2]) for c in cues] == [2]
    top, bottom = cues[0][2]
    assert abs(len(top) - len(bottom)) <= 6


def test_a_segment_without_word_timings_is_spread_over_its_time() -> None:
    text = "this engine gave no word timings so the text is spread in proportion to the length of each word"
    cues = parse_srt(render_srt(Transcript("ru", 30.0, (Segment(10.0, 22.0, text),))))
    assert len(cues) >= 2
    assert cues[0][0] == 10_000 and cues[-1][1] == 22_000
    assert " ".join(" ".join(c[2]) for c in cues) == text


def test_times_past_ten_hours_and_vtt_escaping() -> None:
    segment = _speech("a<b & c>d", 40_000.5)
    assert "11:06:40,500 --> " in render_srt(Transcript("en", 40_010.0, (segment,)))
    vtt = render_vtt(Transcript("en", 40_010.0, (segment,)))
    assert "11:06:40.500 --> " in vtt and "a&lt;b &amp; c&gt;d" in vtt


def test_empty_transcript() -> None:
    assert render_srt(Transcript("en", 3.0, ())) == ""
    assert render_vtt(Transcript("en", 3.0, (Segment(0.0, 3.0, ""),))) == "WEBVTT\n\n"
