"""What goes down the transcription path: the request as a client asked for it, and the plan that runs.

    request = TranscriptionRequest(model="whisper-1", language="en", words=True)   # built once by the API
    plan = transcriber.plan(request)                   # checked: model resolved, language normalised (no audio yet)
    plan = await transcriber.route(path, plan, cancel)   # MODEL=auto: the model chosen (detecting the language)
    transcribed = await transcriber.transcribe(path, plan, cancel)   # or transcriber.stream(path, plan, cancel)

The engines receive `plan.decoding` with the chunks; the pipeline's VAD and chunker receive `plan.chunking`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import msgspec

from app.audio.chunking import Chunking
from app.engines.protocol import Decoding
from app.errors import InvalidInput
from app.languages import CODE_BY_NAME, LANGUAGES
from app.settings import AUTO_MODEL
from app.transcript import Task


class TranscriptionRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A request's transcription parameters as the client sent them (nothing checked against the models yet)."""

    model: str | None = None  # None, "" or an OpenAI alias: the server's MODEL
    language: str | None = None  # as sent: "en", "EN", "en-US", "english"; None: detect
    prompt: str | None = None
    task: Task = "transcribe"
    words: bool = True  # whether the answer shows word timings (else Whisper skips its word alignment)
    keywords: tuple[str, ...] = ()  # words or names to favour (Whisper: hotwords; others: ignored)
    languages: tuple[str, ...] = ()  # OpenAI's languages[] as sent: the audio is in one of these
    logprobs: bool = False  # OpenAI's include[]=logprobs: the tokens' log probabilities
    chunking: Chunking | None = None  # the request's VAD/chunker choices; None: the server's settings


class Detection(msgspec.Struct, frozen=True):
    """The language a model detected in a file's first speech (None: the file has no speech)."""

    model: str
    language: str | None
    probability: float
    seconds: float


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """A checked request: the model that runs it (AUTO_MODEL until routed), how it decodes, how audio is chunked."""

    model: str
    decoding: Decoding
    chunking: Chunking | None = None
    detection: Detection | None = None  # when the language had to be detected to choose the model
    languages: tuple[str, ...] = ()  # several languages[]: MODEL=auto detects among these only

    @property
    def routed(self) -> bool:
        return self.model != AUTO_MODEL


def normalise_language(language: str | None) -> str | None:
    """'EN', 'en-US', 'english' -> 'en'; empty -> None (let the model detect it)."""
    if language is None or not language.strip():
        return None
    value = language.strip().lower().replace("_", "-")
    if value in CODE_BY_NAME:
        return CODE_BY_NAME[value]
    code = value.split("-", 1)[0]
    if not code.isalpha() or not 2 <= len(code) <= 3:
        raise InvalidInput(f"Invalid language '{language}': use an ISO-639-1 code such as 'en'", about="language")
    if code not in LANGUAGES:  # no engine here knows it (Whisper's table and Kyrgyz); faster-whisper would raise
        raise InvalidInput(
            f"Unknown language '{language}': use an ISO-639-1 code such as 'en'",
            about="language",
            code="unsupported_language",
        )
    return code


def language_hint(language: str | None, languages: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """`language` and OpenAI's `languages[]` as (the language, the candidates when there are several): one
    language in the list is the language; `language` and a list that differs from it cannot both be meant."""
    code = normalise_language(language)
    with about_languages():
        candidates = tuple(dict.fromkeys(c for c in (normalise_language(i) for i in languages) if c is not None))
    if code is not None and candidates and candidates != (code,):
        raise InvalidInput("Send language or languages[], not both", about="languages")
    if len(candidates) == 1:
        return candidates[0], ()
    return code, candidates


@contextlib.contextmanager
def about_languages(applies: bool = True) -> Iterator[None]:
    """A refusal of a language that came in `languages[]` names that parameter."""
    try:
        yield
    except InvalidInput as exc:
        if not applies or exc.about != "language":
            raise
        raise InvalidInput(exc.message, about="languages", code=exc.code) from None
