"""PROVISIONAL SSE events (replaced by branch `render`)."""

from __future__ import annotations

import math

import msgspec

from app.transcript import Segment

KEEPALIVE = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"


def _event(body: object) -> bytes:
    return b"data: " + msgspec.json.encode(body) + b"\n\n"


def delta_event(delta: str) -> bytes:
    return _event({"type": "transcript.text.delta", "delta": delta})


def segment_event(index: int, s: Segment) -> bytes:
    return _event({"type": "transcript.text.segment", "id": index, "start": s.start, "end": s.end, "text": s.text})


def done_event(text: str, duration: float) -> bytes:
    return _event({"type": "transcript.text.done", "text": text,
                   "usage": {"type": "duration", "seconds": math.ceil(duration)}})


def error_event(body: dict[str, object]) -> bytes:
    return _event({"type": "error", **body})


class DeltaJoiner:
    def __init__(self) -> None:
        self.started = False

    def push(self, text: str) -> str:
        if not text:
            return ""
        delta = (" " + text) if self.started else text
        self.started = True
        return delta
