"""Renderers: a transcript (or its segments as they arrive) in, response bytes/text out. No HTTP here."""

from app.languages import language_name
from app.render.formats import (
    compression_ratio,
    render_diarized_json,
    render_json,
    render_text,
    render_verbose_json,
    usage_seconds,
    verbose_flags,
)
from app.render.sse import (
    SSE_DONE,
    SSE_KEEPALIVE,
    DeltaJoiner,
    ErrorBody,
    event_payload,
    segment_event,
    sse_delta,
    sse_done,
    sse_error,
    sse_frame,
    sse_queued,
    sse_segment,
    sse_speaker_segment,
)
from app.render.subtitles import MAX_CUE_SECONDS, MAX_LINE_CHARS, MAX_LINES, Cue, build_cues, render_srt, render_vtt

__all__ = [
    "MAX_CUE_SECONDS",
    "MAX_LINES",
    "MAX_LINE_CHARS",
    "SSE_DONE",
    "SSE_KEEPALIVE",
    "Cue",
    "DeltaJoiner",
    "ErrorBody",
    "build_cues",
    "compression_ratio",
    "event_payload",
    "language_name",
    "render_diarized_json",
    "render_json",
    "render_srt",
    "render_text",
    "render_verbose_json",
    "render_vtt",
    "segment_event",
    "sse_delta",
    "sse_done",
    "sse_error",
    "sse_frame",
    "sse_queued",
    "sse_segment",
    "sse_speaker_segment",
    "usage_seconds",
    "verbose_flags",
]
