"""Reflector's GPU Model API shapes (seed 002): which upload form a request is, its validation, and its responses.

Pure: parsed form fields and file field names in, plain structs out; the routes in `app/api/reflector.py` wire it.

Words: each `word` string carries its own separating space (a leading one, as Whisper's tokens do), because
Reflector builds text as `"".join(word for word in words)`; `text` is that join with the outer space stripped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import msgspec

from app.errors import InvalidInput
from app.transcript import Word

TRUE_VALUES = frozenset({"true", "1", "yes", "on"})
FALSE_VALUES = frozenset({"false", "0", "no", "off", ""})
REFLECTOR_FILE_FIELDS = ("files", "files[]")


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


class ReflectorUploadPlan(msgspec.Struct, frozen=True):
    """What a valid Reflector-form upload asks for: the file fields to transcribe, in order, and the answer's shape."""

    file_indices: tuple[int, ...]  # indices into the request's list of files
    multiple: bool  # answer {"results": [...]} rather than one object
    batch: bool
    language: str
    model: str | None


def is_reflector_form(field_names: Iterable[str], file_fields: Iterable[str]) -> bool:
    """ADR: a request is in Reflector's form iff it carries `files`/`files[]` files or a `batch` field."""
    return any(f in REFLECTOR_FILE_FIELDS for f in file_fields) or "batch" in set(field_names)


def parse_batch(value: str | None) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in TRUE_VALUES:
        return True
    if lowered in FALSE_VALUES:
        return False
    raise InvalidInput(f"Invalid value for 'batch': expected true or false, got '{value}'", about="batch")


def plan_upload(fields: Mapping[str, Sequence[str]], file_fields: Sequence[str]) -> ReflectorUploadPlan:
    """Validate a Reflector-form upload (seed 002): `file` or `files`, never both, never neither; `batch` needs files.

    `file_fields` lists each uploaded file's form field name, in request order. Multiple files, or batch=true,
    answer `{"results": [...]}` (the same shape whatever `batch` says); one file without batch answers one object.
    """
    single = [i for i, f in enumerate(file_fields) if f == "file"]
    many = [i for i, f in enumerate(file_fields) if f in REFLECTOR_FILE_FIELDS]
    batch_values = fields.get("batch") or []
    batch = parse_batch(batch_values[0] if batch_values else None)
    if single and many:
        raise InvalidInput("Provide either 'file' or 'files', not both", about="files")
    if not single and not many:
        raise InvalidInput("Missing required parameter: 'file' or 'files' (the audio to transcribe)", about="files")
    if batch and not many:
        raise InvalidInput("'batch=true' requires 'files'", about="batch")
    if len(single) > 1:
        raise InvalidInput("Send one 'file', or several as 'files'", about="audio")
    language_values = fields.get("language") or []
    language = (language_values[0].strip() if language_values else "") or "en"
    model_values = fields.get("model") or []
    model = (model_values[0].strip() if model_values else "") or None
    indices = tuple(single or many)
    return ReflectorUploadPlan(
        file_indices=indices, multiple=batch or len(indices) > 1, batch=batch, language=language, model=model
    )


def shift_words(words: Sequence[Word], offset: float) -> list[Word]:
    """Words moved by `offset` seconds; each end clamped so start <= end <= the next word's start."""
    if not math.isfinite(offset):
        raise InvalidInput("timestamp_offset must be a finite number", about="timestamp_offset")
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


def render_upload(plan: ReflectorUploadPlan, results: Sequence[ReflectorTranscript]) -> bytes:
    if plan.multiple:
        return msgspec.json.encode(ReflectorResults(tuple(results)))
    return msgspec.json.encode(results[0])


def render_transcript(result: ReflectorTranscript) -> bytes:
    return msgspec.json.encode(result)
