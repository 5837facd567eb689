"""The non-streaming OpenAI response bodies: json, text and verbose_json, shaped as the `openai` SDK types them."""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence

import msgspec

from app.languages import language_name
from app.transcript import DiarizedSegment, Segment, TokenLogprob, Transcript, join_segments


class Usage(msgspec.Struct, tag_field="type", tag="duration"):
    """Billed audio seconds, as json, diarized_json and a stream's done event report them."""

    seconds: int


class Logprob(msgspec.Struct):
    """OpenAI's `logprobs` item (json with `include[]=logprobs`)."""

    token: str
    logprob: float
    bytes: list[int]


class JsonBody(msgspec.Struct, omit_defaults=True):
    text: str
    logprobs: list[Logprob] | msgspec.UnsetType = msgspec.UNSET
    usage: Usage | msgspec.UnsetType = msgspec.UNSET


class VerboseSegment(msgspec.Struct):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class VerboseWord(msgspec.Struct):
    word: str
    start: float
    end: float


class VerboseBody(msgspec.Struct, omit_defaults=True):
    task: str
    language: str
    duration: float
    text: str
    words: list[VerboseWord] | msgspec.UnsetType = msgspec.UNSET
    segments: list[VerboseSegment] | msgspec.UnsetType = msgspec.UNSET
    usage: Usage | msgspec.UnsetType = msgspec.UNSET


class DiarizedSegmentBody(msgspec.Struct, tag_field="type", tag="transcript.text.segment"):
    id: str
    start: float
    end: float
    speaker: str
    text: str


class DiarizedBody(msgspec.Struct):
    task: str
    duration: float
    text: str
    segments: list[DiarizedSegmentBody]
    usage: Usage


_encoder = msgspec.json.Encoder()


def usage_seconds(duration: float) -> int:
    """Billed seconds as OpenAI reports them for whisper-1: the duration rounded up to a whole second."""
    return math.ceil(round(max(duration, 0.0), 3))


def render_json(transcript: Transcript, *, logprobs: bool = False) -> bytes:
    """OpenAI's json; with `logprobs`, each token of the text with its log probability (an engine that gives none:
    an empty list)."""
    body = JsonBody(text=transcript.text, usage=_usage(transcript))
    if logprobs:
        body.logprobs = logprob_items(transcript.logprobs)
    return _encoder.encode(body)


def logprob_items(tokens: Sequence[TokenLogprob]) -> list[Logprob]:
    return [Logprob(t.token, round(t.logprob, 6), list(t.data)) for t in tokens]


def render_diarized_json(segments: Sequence[DiarizedSegment], duration: float) -> bytes:
    """OpenAI's diarized_json: segments with speakers; `text` is their texts joined."""
    body = DiarizedBody(
        task="transcribe",
        duration=_time(duration),
        text=join_segments([s.text for s in segments]),
        segments=[
            DiarizedSegmentBody(str(i), _time(s.start), _time(s.end), s.speaker, s.text) for i, s in enumerate(segments)
        ],
        usage=Usage(usage_seconds(duration)),
    )
    return _encoder.encode(body)


def render_text(transcript: Transcript) -> str:
    """`response_format=text`: the text followed by a newline, as OpenAI sends it."""
    return transcript.text + "\n"


def verbose_flags(granularities: Iterable[str]) -> tuple[bool, bool]:
    """(words, segments) for `timestamp_granularities[]`: segments unless only words were asked for."""
    asked = set(granularities)
    return "word" in asked, "segment" in asked or not asked


def render_verbose_json(transcript: Transcript, *, words: bool, segments: bool, spaced_words: bool = False) -> bytes:
    """OpenAI's verbose_json. With `spaced_words` every word carries its leading separating space, as Whisper's
    tokens (and faster-whisper servers) do, for clients that rebuild the text as `"".join(words)` (Reflector)."""
    body = VerboseBody(
        task=transcript.task,
        # OpenAI's translations always report the output language.
        language="english" if transcript.task == "translate" else language_name(transcript.language),
        duration=_time(transcript.duration),
        text=transcript.text,
    )
    if segments:
        body.segments = [_segment(i, s) for i, s in enumerate(transcript.segments)]
    if words:
        body.words = [
            VerboseWord(" " + w.word if spaced_words else w.word, _time(w.start), _time(w.end))
            for w in transcript.words
        ]
    body.usage = _usage(transcript)
    return _encoder.encode(body)


def _usage(transcript: Transcript) -> Usage | msgspec.UnsetType:
    """OpenAI reports usage for transcriptions only; its translation bodies have none."""
    return Usage(usage_seconds(transcript.duration)) if transcript.task == "transcribe" else msgspec.UNSET


def compression_ratio(text: str) -> float:
    """Whisper's measure of repetitiveness: UTF-8 bytes over zlib-compressed bytes."""
    data = text.encode()
    return round(len(data) / len(zlib.compress(data)), 4) if data else 0.0


def _segment(index: int, seg: Segment) -> VerboseSegment:
    return VerboseSegment(
        id=index,
        seek=round(seg.start * 100),  # Whisper's seek counts 10 ms mel frames
        start=_time(seg.start),
        end=_time(seg.end),
        text=seg.text,
        tokens=list(seg.tokens),
        temperature=_number(seg.temperature),
        avg_logprob=_number(seg.avg_logprob),
        compression_ratio=_number(seg.compression_ratio, compression_ratio(seg.text)),
        no_speech_prob=_number(seg.no_speech_prob),
    )


def _number(value: float | None, default: float = 0.0) -> float:
    """OpenAI always has a number here: unknown (None) or non-finite values become the default."""
    return default if value is None or not math.isfinite(value) else value


def _time(seconds: float) -> float:
    return round(_number(seconds), 3)
