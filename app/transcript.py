"""Domain types that flow from the engines to the renderers. Times are seconds from the start of the audio."""

from __future__ import annotations

from typing import Literal

import msgspec

Task = Literal["transcribe", "translate"]


class Word(msgspec.Struct, frozen=True):
    """One recognised word. `word` has no surrounding spaces; renderers add separators."""

    word: str
    start: float
    end: float
    probability: float | None = None

    def shifted(self, offset: float) -> Word:
        return Word(self.word, round(self.start + offset, 3), round(self.end + offset, 3), self.probability)


class TokenLogprob(msgspec.Struct, frozen=True):
    """One decoded token and the log probability the model gave it (OpenAI's `include[]=logprobs`). `token` is the
    token's text with its leading space; `data` its bytes (a token may hold part of a UTF-8 character)."""

    token: str
    logprob: float
    data: bytes


class Segment(msgspec.Struct, frozen=True):
    """A stretch of recognised speech with its words. `text` is stripped of surrounding spaces.

    Engines fill the optional decoder statistics only when they really know them (Whisper does, CTC does not).
    """

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    tokens: tuple[int, ...] = ()
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None
    temperature: float | None = None
    logprobs: tuple[TokenLogprob, ...] = ()  # only when asked for (`logprobs=True` to the engine)

    def shifted(self, offset: float) -> Segment:
        if offset == 0:
            return self
        return msgspec.structs.replace(
            self,
            start=round(self.start + offset, 3),
            end=round(self.end + offset, 3),
            words=tuple(w.shifted(offset) for w in self.words),
        )


class DiarizedSegment(msgspec.Struct, frozen=True):
    """A stretch of one speaker's speech. `speaker` is a known voice's name or an anonymous label (A, B, ...)."""

    start: float
    end: float
    text: str
    speaker: str


def join_segments(texts: list[str]) -> str:
    """The full text of a transcript: segment texts joined by single spaces, empty ones skipped."""
    return " ".join(t for t in texts if t)


class Transcript(msgspec.Struct, frozen=True):
    language: str
    duration: float
    segments: tuple[Segment, ...]
    task: Task = "transcribe"

    @property
    def text(self) -> str:
        return join_segments([s.text for s in self.segments])

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    @property
    def logprobs(self) -> tuple[TokenLogprob, ...]:
        return tuple(t for s in self.segments for t in s.logprobs)
