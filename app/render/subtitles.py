"""SRT and WebVTT subtitles built from word timings, with readable line lengths and cue durations.

Words are grouped greedily into cues; when the next word does not fit (too many characters for the lines, or the
cue would last too long) the cue is cut at its best break point: a sentence end, a pause, a clause mark, a segment
boundary, the later the better. A long pause, or a pause after a sentence end, always ends a cue. Segments without
word timings contribute their text as words with times spread proportionally to their length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from app.transcript import Segment, Transcript

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_SECONDS = 7.0
MIN_CUE_SECONDS = 1.0  # a short cue stays up this long when the next one leaves room
PAUSE_SECONDS = 0.5  # a silence this long is a good place to break
LONG_PAUSE_SECONDS = 1.5  # a silence this long always ends a cue

_SENTENCE_ENDS = tuple(".!?…。！？")
_CLAUSE_ENDS = tuple(",;:–—、，；：")
_CLOSERS = "\"'”’»)]"


class Cue(msgspec.Struct, frozen=True):
    """One subtitle: times in whole milliseconds, 1..MAX_LINES lines of text."""

    start_ms: int
    end_ms: int
    lines: tuple[str, ...]


class _Token(msgspec.Struct, frozen=True):
    text: str
    start_ms: int
    end_ms: int
    starts_segment: bool


def render_srt(transcript: Transcript) -> str:
    return "".join(
        f"{i}\n{_clock(c.start_ms, ',')} --> {_clock(c.end_ms, ',')}\n" + "\n".join(c.lines) + "\n\n"
        for i, c in enumerate(build_cues(transcript), start=1)
    )


def render_vtt(transcript: Transcript) -> str:
    return "WEBVTT\n\n" + "".join(
        f"{_clock(c.start_ms, '.')} --> {_clock(c.end_ms, '.')}\n" + "\n".join(map(_vtt_escape, c.lines)) + "\n\n"
        for c in build_cues(transcript)
    )


def build_cues(transcript: Transcript) -> list[Cue]:
    """Cues in order, never overlapping, each with start < end, none longer than MAX_CUE_SECONDS."""
    groups = _group(_tokens(transcript.segments))
    timed: list[tuple[int, int]] = []
    previous_end = 0
    for group in groups:
        start = max(group[0].start_ms, previous_end)
        # a single very slow word (its letters seconds apart) is shown for MAX_CUE_SECONDS, not for its whole span
        end = min(max(max(t.end_ms for t in group), start + 1), start + round(MAX_CUE_SECONDS * 1000))
        timed.append((start, end))
        previous_end = end
    cues = []
    audio_end = _ms(transcript.duration)
    for i, ((start, end), group) in enumerate(zip(timed, groups, strict=True)):
        limit = timed[i + 1][0] if i + 1 < len(timed) else max(audio_end, end)
        end = max(end, min(start + round(MIN_CUE_SECONDS * 1000), limit))
        cues.append(Cue(start, end, _layout([t.text for t in group])))
    return cues


def _tokens(segments: Sequence[Segment]) -> list[_Token]:
    """All words as tokens with whole-millisecond times that never go backwards."""
    tokens: list[_Token] = []
    last_start = 0
    for seg in segments:
        words = [(w.word, w.start, w.end) for w in seg.words] if seg.words else _spread(seg)
        first = True
        for raw, start, end in words:
            text = " ".join(raw.split())
            if not text:
                continue
            start_ms = max(_ms(start), last_start)
            tokens.append(_Token(text, start_ms, max(_ms(end), start_ms), first))
            last_start, first = start_ms, False
    return tokens


def _spread(seg: Segment) -> list[tuple[str, float, float]]:
    """A segment without word timings: its words share its time in proportion to their length."""
    words = seg.text.split()
    total = sum(len(w) + 1 for w in words)
    span = max(seg.end - seg.start, 0.0)
    spread, done = [], 0
    for word in words:
        start = seg.start + span * done / total
        done += len(word) + 1
        spread.append((word, start, seg.start + span * done / total))
    return spread


def _group(tokens: list[_Token]) -> list[list[_Token]]:
    groups: list[list[_Token]] = []
    current: list[_Token] = []
    for token in tokens:
        if current and _must_break(current[-1], token):
            groups.append(current)
            current = []
        while current and not _fits([*current, token]):
            cut = _best_cut([*current, token])
            groups.append(current[:cut])
            current = current[cut:]
        current.append(token)
    if current:
        groups.append(current)
    return groups


def _must_break(previous: _Token, token: _Token) -> bool:
    gap = (token.start_ms - previous.end_ms) / 1000
    return gap >= LONG_PAUSE_SECONDS or (gap >= PAUSE_SECONDS and _ends_with(previous.text, _SENTENCE_ENDS))


def _fits(tokens: list[_Token]) -> bool:
    """A single token always fits (a very long word or a very slow one stands alone: `build_cues` caps its time)."""
    if len(tokens) == 1:
        return True
    if max(t.end_ms for t in tokens) - tokens[0].start_ms > MAX_CUE_SECONDS * 1000:
        return False
    lines = _wrap([t.text for t in tokens])
    return len(lines) <= MAX_LINES and all(len(line) <= MAX_LINE_CHARS for line in lines)


def _best_cut(tokens: list[_Token]) -> int:
    """Where to end the cue: an index 1..len(tokens)-1 of the token that starts the next cue."""
    total = sum(len(t.text) + 1 for t in tokens[:-1])
    best, best_score, filled = 1, -math.inf, 0
    for cut in range(1, len(tokens)):
        previous, following = tokens[cut - 1], tokens[cut]
        filled += len(previous.text) + 1
        score = filled / total  # prefer full cues ...
        if _ends_with(previous.text, _SENTENCE_ENDS):  # ... but rather break where the speech does
            score += 1.0
        elif _ends_with(previous.text, _CLAUSE_ENDS):
            score += 0.5
        if following.start_ms - previous.end_ms >= PAUSE_SECONDS * 1000:
            score += 1.0
        if following.starts_segment:
            score += 0.5
        if score >= best_score:
            best, best_score = cut, score
    return best


def _wrap(words: list[str]) -> list[str]:
    """Greedy line filling: the fewest lines of at most MAX_LINE_CHARS (a longer word gets a line of its own)."""
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= MAX_LINE_CHARS:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _layout(words: list[str]) -> tuple[str, ...]:
    """The cue's lines: one if the text fits, else two balanced lines, breaking after punctuation if it costs little."""
    lines = _wrap(words)
    if len(lines) != 2:
        return tuple(lines)
    best: tuple[float, int] | None = None
    for cut in range(1, len(words)):
        first, second = " ".join(words[:cut]), " ".join(words[cut:])
        if len(first) > MAX_LINE_CHARS or len(second) > MAX_LINE_CHARS:
            continue
        cost = abs(len(first) - len(second)) - (8 if _ends_with(words[cut - 1], _SENTENCE_ENDS + _CLAUSE_ENDS) else 0)
        if best is None or cost < best[0]:
            best = (cost, cut)
    if best is None:
        return tuple(lines)
    return (" ".join(words[: best[1]]), " ".join(words[best[1] :]))


def _ends_with(text: str, marks: tuple[str, ...]) -> bool:
    return text.rstrip(_CLOSERS).endswith(marks)


def _ms(seconds: float) -> int:
    return max(round(seconds * 1000), 0) if math.isfinite(seconds) else 0


def _clock(ms: int, separator: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def _vtt_escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
