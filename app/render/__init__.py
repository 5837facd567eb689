"""PROVISIONAL renderers (replaced by branch `render`)."""

from __future__ import annotations

import math

import msgspec

from app.transcript import Transcript


def _usage(t: Transcript) -> dict[str, object]:
    return {"type": "duration", "seconds": math.ceil(t.duration)}


def render_json(t: Transcript) -> bytes:
    return msgspec.json.encode({"text": t.text, "usage": _usage(t)})


def render_text(t: Transcript) -> str:
    return t.text + "\n"


def render_verbose_json(t: Transcript, *, words: bool, segments: bool) -> bytes:
    body: dict[str, object] = {"task": t.task, "language": t.language, "duration": t.duration, "text": t.text}
    if segments:
        body["segments"] = [
            {"id": i, "seek": 0, "start": s.start, "end": s.end, "text": s.text, "tokens": list(s.tokens),
             "temperature": s.temperature or 0.0, "avg_logprob": s.avg_logprob or 0.0,
             "compression_ratio": s.compression_ratio or 0.0, "no_speech_prob": s.no_speech_prob or 0.0}
            for i, s in enumerate(t.segments)
        ]
    if words:
        body["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in t.words]
    body["usage"] = _usage(t)
    return msgspec.json.encode(body)


def _ts(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def render_srt(t: Transcript) -> str:
    return "".join(
        f"{i}\n{_ts(s.start, ',')} --> {_ts(s.end, ',')}\n{s.text}\n\n" for i, s in enumerate(t.segments, 1)
    )


def render_vtt(t: Transcript) -> str:
    return "WEBVTT\n\n" + "".join(f"{_ts(s.start, '.')} --> {_ts(s.end, '.')}\n{s.text}\n\n" for s in t.segments)
