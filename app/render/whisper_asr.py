"""whisper-asr-webservice's `/asr` outputs (txt, vtt, srt, tsv, json) and its `/detect-language` body, as that
service writes them (`app/utils.py` there: one line or row per segment; JSON is faster-whisper's result dict).

SRT and VTT are our own subtitles (`app.render.subtitles`: cues of at most two 42-character lines and 7 s, cut at
sentence ends and pauses), in the same syntax: that service writes one cue per Whisper segment, which for GigaAM's
15-22 s chunks would make unreadable subtitles. With diarization each piece of text is one speaker's and starts
with `[A]: ` (WhisperX's `[SPEAKER_00]: `, with our speaker labels); JSON segments then carry `speaker`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

from app.languages import language_name
from app.render.formats import compression_ratio
from app.render.subtitles import render_srt, render_vtt
from app.transcript import DiarizedSegment, Segment, Transcript

Output = Literal["txt", "vtt", "srt", "tsv", "json"]
OUTPUTS: tuple[Output, ...] = ("txt", "vtt", "srt", "tsv", "json")


class AsrWord(msgspec.Struct):
    start: float
    end: float
    word: str
    probability: float


class AsrSegment(msgspec.Struct, omit_defaults=True):
    """faster-whisper's `Segment` as `dataclasses.asdict` writes it (field order kept)."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[AsrWord] | None
    temperature: float | None
    speaker: str | msgspec.UnsetType = msgspec.UNSET


class AsrResult(msgspec.Struct):
    language: str
    segments: list[AsrSegment]
    text: str


class DetectedLanguage(msgspec.Struct):
    """POST /detect-language."""

    detected_language: str
    language_code: str
    confidence: float


def detected_language(code: str, confidence: float) -> DetectedLanguage:
    return DetectedLanguage(language_name(code), code, round(confidence, 4))


def _pieces(transcript: Transcript, diarized: Sequence[DiarizedSegment] | None) -> list[tuple[float, float, str]]:
    """(start, end, text) per segment, or per speaker's piece with its label."""
    if diarized is None:
        return [(s.start, s.end, s.text.strip()) for s in transcript.segments]
    return [(s.start, s.end, f"[{s.speaker}]: {s.text.strip()}") for s in diarized]


def render_output(
    output: Output, transcript: Transcript, *, words: bool, diarized: Sequence[DiarizedSegment] | None = None
) -> str:
    """The body of `/asr?output=...`; `words`: JSON segments carry word timings (word_timestamps=true)."""
    pieces = _pieces(transcript, diarized)
    match output:
        case "txt":
            return "".join(f"{text}\n" for _, _, text in pieces)
        case "tsv":
            rows = (
                f"{round(1000 * start)}\t{round(1000 * end)}\t{text.replace(chr(9), ' ')}\n"
                for start, end, text in pieces
            )
            return "start\tend\ttext\n" + "".join(rows)
        case "srt" | "vtt":
            shown = transcript if diarized is None else _as_transcript(transcript, pieces)
            return render_srt(shown) if output == "srt" else render_vtt(shown)
        case "json":
            return msgspec.json.encode(_result(transcript, words=words, diarized=diarized)).decode()


def _as_transcript(transcript: Transcript, pieces: list[tuple[float, float, str]]) -> Transcript:
    segments = tuple(Segment(start, end, text) for start, end, text in pieces)
    return msgspec.structs.replace(transcript, segments=segments)


def _number(value: float | None) -> float:
    return 0.0 if value is None else round(value, 4)


def _segment(index: int, segment: Segment, *, words: bool) -> AsrSegment:
    # Whisper's texts start with the space before their first word (ADR 7), as faster-whisper's do
    return AsrSegment(
        id=index,
        seek=round(segment.start * 100),
        start=round(segment.start, 3),
        end=round(segment.end, 3),
        text=" " + segment.text.strip(),
        tokens=list(segment.tokens),
        avg_logprob=_number(segment.avg_logprob),
        compression_ratio=_number(segment.compression_ratio)
        if segment.compression_ratio is not None
        else compression_ratio(segment.text),
        no_speech_prob=_number(segment.no_speech_prob),
        words=[AsrWord(round(w.start, 3), round(w.end, 3), " " + w.word, _number(w.probability)) for w in segment.words]
        if words
        else None,
        temperature=_number(segment.temperature),
    )


def _result(transcript: Transcript, *, words: bool, diarized: Sequence[DiarizedSegment] | None) -> AsrResult:
    if diarized is None:
        segments = [_segment(i, s, words=words) for i, s in enumerate(transcript.segments, start=1)]
    else:
        segments = [
            msgspec.structs.replace(_segment(i, Segment(s.start, s.end, s.text), words=False), speaker=s.speaker)
            for i, s in enumerate(diarized, start=1)
        ]
    return AsrResult(language=transcript.language, segments=segments, text="".join(s.text for s in segments))
