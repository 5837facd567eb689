"""The one small protocol every speech engine implements: 16 kHz mono float32 chunks in, segments out.

Engines are pure: no HTTP, no files of the request, no rendering. Times in the returned segments are relative to
the start of each chunk; the pipeline shifts them to absolute times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from app.audio.types import Audio
from app.languages import WHISPER_LANGUAGES, display_name
from app.transcript import Segment, Task


class ModelInfo(msgspec.Struct, frozen=True):
    """What a model is and can do. `languages` is None for a multilingual Whisper (Whisper's languages)."""

    name: str
    family: str
    languages: frozenset[str] | None
    can_translate: bool = False
    owned_by: str = "stt-appliance"

    def supports(self, language: str) -> bool:
        return language in (WHISPER_LANGUAGES if self.languages is None else self.languages)

    def language_names(self) -> str:
        if self.languages is None:
            return "Whisper's languages"
        return ", ".join(sorted(display_name(code) for code in self.languages))


class Decoding(msgspec.Struct, frozen=True, kw_only=True):
    """How a request's chunks are decoded: the one value every engine receives with them.

    `language`: an ISO code, or None to let the model detect it. `keywords`: words or names to favour (best effort;
    an engine without a way to favour words ignores them). `words=False` says no caller needs word timings: an engine
    may skip work it does only for them (Whisper's word alignment costs about as much again as its decoding);
    segments then may carry no words. `logprobs=True`: segments carry their tokens' log probabilities where the
    engine can give them (OpenAI's include[]=logprobs).
    """

    language: str | None = None
    task: Task = "transcribe"
    prompt: str | None = None
    words: bool = True
    keywords: tuple[str, ...] = ()
    logprobs: bool = False


class ChunkResult(msgspec.Struct, frozen=True):
    """What an engine heard in one chunk: chunk-relative segments and, if it detected it, the language."""

    segments: tuple[Segment, ...]
    language: str | None = None


class Engine(Protocol):
    """A loaded model."""

    @property
    def info(self) -> ModelInfo: ...

    def transcribe(self, chunks: Sequence[Audio], decoding: Decoding) -> list[ChunkResult]:
        """Recognise each chunk (at most 30 s each) as `decoding` says; one result per chunk, in order."""
        ...
