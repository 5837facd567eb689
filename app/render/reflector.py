"""Reflector's GPU Model API response shapes (seed 002): words, one file's transcript, several files' results.

Pure: transcripts in, structs and bytes out; `app/api/params.py` parses Reflector's requests, `app/api/reflector.py`
wires them.

Words: each `word` string carries its own separating space (a leading one, as Whisper's tokens do), because
Reflector builds text as `"".join(word for word in words)`; `text` is that join with the outer space stripped.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from app.transcript import Word


class ReflectorWord(msgspec.Struct, frozen=True):
    word: str
    start: float
    end: float


class ReflectorTranscript(msgspec.Struct, frozen=True, omit_defaults=True):
    """One file's result; `filename` is set for uploads and left out for from-url answers."""

    text: str
    words: tuple[ReflectorWord, ...]
    filename: str | None = None


class ReflectorResults(msgspec.Struct, frozen=True):
    results: tuple[ReflectorTranscript, ...]


class TranslatedText(msgspec.Struct, frozen=True):
    """POST /translate's answer: the text by language code, the source's and the target's."""

    text: dict[str, str]


def shift_words(words: Sequence[Word], offset: float) -> list[Word]:
    """Words moved by `offset` seconds (finite); each end clamped so start <= end <= the next word's start."""
    starts = [round(w.start + offset, 3) for w in words]
    out: list[Word] = []
    for i, w in enumerate(words):
        start = starts[i]
        end = round(w.end + offset, 3)
        if i + 1 < len(words):
            end = min(end, starts[i + 1])
        end = max(end, start)
        out.append(Word(w.word, start, end, w.probability))
    return out


def reflector_words(words: Sequence[Word]) -> tuple[ReflectorWord, ...]:
    """Each word with its leading separating space, so that `"".join(words)` is the text."""
    return tuple(ReflectorWord(" " + w.word.strip(), w.start, w.end) for w in words if w.word.strip())


def reflector_transcript(
    words: Sequence[Word], *, filename: str | None = None, timestamp_offset: float = 0.0
) -> ReflectorTranscript:
    shifted = shift_words(words, timestamp_offset) if timestamp_offset else list(words)
    rendered = reflector_words(shifted)
    text = "".join(w.word for w in rendered).strip()
    return ReflectorTranscript(text=text, words=rendered, filename=filename)


def render_upload(results: Sequence[ReflectorTranscript], *, multiple: bool) -> bytes:
    """`{"results": [...]}` when several files were sent (or batch=true), else the one file's object."""
    if multiple:
        return msgspec.json.encode(ReflectorResults(tuple(results)))
    return msgspec.json.encode(results[0])


def render_transcript(result: ReflectorTranscript) -> bytes:
    return msgspec.json.encode(result)
