"""Server-sent events of a streamed transcription, shaped as the `openai` SDK's stream event types.

Each builder returns the bytes of one complete event (`data: {...}\\n\\n`); the `*_payload` functions give the JSON
alone for frameworks that frame events themselves. `transcript.text.done` carries the duration usage of the
non-streamed json response (`{"type": "duration", "seconds": N}`): the SDK's model types it as token usage, but it
builds events leniently, so clients read `event.usage.seconds` just as OpenAI's own duration usage.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from app.render.formats import Logprob, Usage, logprob_items
from app.transcript import DiarizedSegment, Segment, TokenLogprob

SSE_DONE = b"data: [DONE]\n\n"
SSE_KEEPALIVE = b": keep-alive\n\n"


class DeltaEvent(msgspec.Struct, tag_field="type", tag="transcript.text.delta", omit_defaults=True):
    delta: str
    logprobs: list[Logprob] | msgspec.UnsetType = msgspec.UNSET  # include[]=logprobs: the delta's tokens


class DoneEvent(msgspec.Struct, tag_field="type", tag="transcript.text.done"):
    text: str
    usage: Usage | None = None


class SegmentEvent(msgspec.Struct, tag_field="type", tag="transcript.text.segment"):
    """OpenAI's diarized segment event; `speaker` is "" when the speaker is unknown (the SDK requires a string)."""

    id: str
    start: float
    end: float
    text: str
    speaker: str


class ErrorBody(msgspec.Struct):
    """OpenAI's error object, in error responses and error events."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorEvent(msgspec.Struct, tag_field="type", tag="error"):
    error: ErrorBody


Event = DeltaEvent | DoneEvent | SegmentEvent | ErrorEvent

_encoder = msgspec.json.Encoder()


def sse_queued(position: int, eta_seconds: float | None) -> bytes:
    """A comment (clients skip it) while the work waits its turn: `: queued position=N eta=Ns` (no eta until a speed
    is measured)."""
    eta = "" if eta_seconds is None else f" eta={round(eta_seconds)}s"
    return f": queued position={position}{eta}\n\n".encode()


def sse_frame(payload: bytes) -> bytes:
    """One SSE event from a single-line JSON payload."""
    return b"data: " + payload + b"\n\n"


def event_payload(event: Event) -> bytes:
    return _encoder.encode(event)


def sse_delta(delta: str, logprobs: Sequence[TokenLogprob] | None = None) -> bytes:
    """A delta event; with `logprobs` (include[]=logprobs), the tokens of the segment it carries."""
    event = DeltaEvent(delta)
    if logprobs is not None:
        event.logprobs = logprob_items(logprobs)
    return sse_frame(event_payload(event))


def sse_done(text: str, seconds: int | None = None) -> bytes:
    """The final event; `seconds` (the billed duration, rounded up) adds `usage` as in the json response."""
    usage = None if seconds is None else Usage(seconds)
    return sse_frame(event_payload(DoneEvent(text, usage)))


def sse_segment(index: int, segment: Segment, *, speaker: str = "") -> bytes:
    return sse_frame(event_payload(segment_event(index, segment, speaker=speaker)))


def segment_event(index: int, segment: Segment, *, speaker: str = "") -> SegmentEvent:
    return SegmentEvent(str(index), round(segment.start, 3), round(segment.end, 3), segment.text, speaker)


def sse_speaker_segment(index: int, segment: DiarizedSegment) -> bytes:
    """A diarized_json stream's segment event: one per diarized segment, with its speaker."""
    event = SegmentEvent(str(index), round(segment.start, 3), round(segment.end, 3), segment.text, segment.speaker)
    return sse_frame(event_payload(event))


def sse_error(error: ErrorBody) -> bytes:
    """An OpenAI-shaped error event."""
    return sse_frame(event_payload(ErrorEvent(error)))


class DeltaJoiner:
    """Turns successive segment texts into deltas whose concatenation is exactly `Transcript.text`.

    The separating space goes at the start of the next non-empty delta; an empty segment gives no delta.
    """

    def __init__(self) -> None:
        self._started = False

    def push(self, text: str) -> str | None:
        if not text:
            return None
        delta = " " + text if self._started else text
        self._started = True
        return delta
